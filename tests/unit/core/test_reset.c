/* Factory reset over a fake port: everything erased in order, the marker
 * first and last, and a reset cut short by a failure or power loss is
 * pending until a later call finishes it. */
#include "core_test.h"

#include "fake_port.h"
#include "iotd/reset.h"

static fake_port fp;

typedef struct fake_reset {
    char order[8]; /* c(redentials) s(ettings) k(v storage), as called */
    int n;
    int fail_at; /* the call that fails with IOTD_EIO, 0: none */
    bool settings, credentials;
} fake_reset;

static fake_reset fr;

static iotd_status step(char what)
{
    fr.order[fr.n++] = what;
    return fr.n == fr.fail_at ? IOTD_EIO : IOTD_OK;
}

static iotd_status erase_credentials(void *ctx)
{
    (void)ctx;
    iotd_status st = step('c');
    if (st == IOTD_OK)
        fr.credentials = false;
    return st;
}

static iotd_status erase_settings(void *ctx)
{
    (void)ctx;
    iotd_status st = step('s');
    if (st == IOTD_OK)
        fr.settings = false;
    return st;
}

static iotd_status erase_storage(void *ctx)
{
    (void)ctx;
    iotd_status st = step('k');
    if (st == IOTD_OK)
        for (size_t i = 0; i < FAKE_KV_MAX; i++)
            fp.kv[i].used = false;
    return st;
}

static const iotd_reset_port RP = {NULL, erase_credentials, erase_settings, erase_storage};

static void setup(void)
{
    fake_port_init(&fp);
    memset(&fr, 0, sizeof(fr));
    fr.settings = fr.credentials = true;
    fake_kv_put(&fp, "seq", "12345678", 8);
    fake_kv_put(&fp, "q.head", "1234", 4);
}

static void erases_everything_in_order(void **state)
{
    (void)state;
    setup();
    CT_FALSE(iotd_factory_reset_pending(&fp.port));
    CT_EQ(iotd_factory_reset(&fp.port, &RP), IOTD_OK);
    CT_STR_EQ(fr.order, "csk");
    CT_FALSE(fr.credentials);
    CT_FALSE(fr.settings);
    CT_TRUE(fake_kv_find(&fp, "seq") == NULL);
    CT_TRUE(fake_kv_find(&fp, IOTD_RESET_MARKER_KEY) == NULL);
    CT_FALSE(iotd_factory_reset_pending(&fp.port));
    CT_EQ(fake_event_count(&fp, "reset.done"), 1u);
}

/* A failure part way leaves the marker: pending at the next boot, and the
 * next call erases everything again from the start. */
static void cut_short_is_pending_then_finished(void **state)
{
    (void)state;
    setup();
    fr.fail_at = 2; /* the settings */
    CT_EQ(iotd_factory_reset(&fp.port, &RP), IOTD_EIO);
    CT_FALSE(fr.credentials); /* the keys went first */
    CT_TRUE(fr.settings);
    CT_TRUE(fake_kv_find(&fp, "seq") != NULL);
    fake_reboot(&fp);
    CT_TRUE(iotd_factory_reset_pending(&fp.port));
    CT_EQ(fake_event_count(&fp, "reset.incomplete"), 1u);
    fr.fail_at = 0;
    CT_EQ(iotd_factory_reset(&fp.port, &RP), IOTD_OK);
    CT_STR_EQ(fr.order, "cscsk");
    CT_FALSE(fr.settings);
    CT_FALSE(iotd_factory_reset_pending(&fp.port));
}

/* The marker cannot be stored: nothing is erased (a reset that could not
 * be resumed must not start). A torn marker counts as pending. */
static void marker_first(void **state)
{
    (void)state;
    setup();
    fp.set_fails = true;
    CT_EQ(iotd_factory_reset(&fp.port, &RP), IOTD_EIO);
    CT_EQ(fr.n, 0);
    CT_TRUE(fr.credentials);
    fp.set_fails = false;
    fake_kv_put(&fp, IOTD_RESET_MARKER_KEY, "RRRRRRRRRRRR", 12);
    CT_TRUE(iotd_factory_reset_pending(&fp.port));
    iotd_reset_port missing = RP;
    missing.erase_settings = NULL;
    CT_EQ(iotd_factory_reset(&fp.port, &missing), IOTD_EINVAL);
    CT_EQ(iotd_factory_reset(NULL, &RP), IOTD_EINVAL);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(erases_everything_in_order),
        CT_TEST(cut_short_is_pending_then_finished),
        CT_TEST(marker_first),
    };
    return CT_RUN(tests);
}
