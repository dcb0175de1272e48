/* Status texts: every code has its own stable description, and a value
 * outside the enumeration (a damaged variable) still gets one. */
#include "core_test.h"

#include <string.h>

#include "iotd/status.h"

static void every_status_has_its_own_text(void **state)
{
    (void)state;
    static const iotd_status all[] = {IOTD_OK,     IOTD_EINVAL, IOTD_ENOENT,
                                      IOTD_ENOSPC, IOTD_EIO,    IOTD_ECORRUPT,
                                      IOTD_ENET,   IOTD_ERANGE, IOTD_ESTATE};
    const size_t n = sizeof(all) / sizeof(all[0]);
    for (size_t i = 0; i < n; i++) {
        const char *text = iotd_strerror(all[i]);
        CT_TRUE(text != 0 && text[0] != '\0');
        CT_TRUE(strcmp(text, "unknown status") != 0);
        for (size_t j = 0; j < i; j++)
            CT_TRUE(strcmp(text, iotd_strerror(all[j])) != 0);
    }
    CT_STR_EQ(iotd_strerror(IOTD_OK), "success");
    CT_STR_EQ(iotd_strerror(IOTD_ENET), "no response from the gateway");
}

static void unknown_value_has_a_text(void **state)
{
    (void)state;
    CT_STR_EQ(iotd_strerror((iotd_status)99), "unknown status");
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(every_status_has_its_own_text),
        CT_TEST(unknown_value_has_a_text),
    };
    return CT_RUN(tests);
}
