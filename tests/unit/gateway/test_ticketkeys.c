/* The session ticket key ring with a fake clock and a counting random
 * source: a ticket opens under the key that sealed it for one lifetime,
 * under the previous key (renewed) for the next, then never; an idle
 * gateway drops both keys; a failing random source issues no key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ticketkeys.h"

static unsigned char counter;
static bool random_fails;

static int fake_random(unsigned char *buf, size_t len)
{
    if (random_fails)
        return -1;
    for (size_t i = 0; i < len; i++)
        buf[i] = ++counter;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    counter = 0;
    random_fails = false;
    return 0;
}

static void sealed_key_opens_then_renews_then_expires(void **state)
{
    (void)state;
    gw_ticket_keys k;
    gw_ticket_key seal, open;
    assert_int_equal(gw_ticket_keys_init(&k, 100, 1000, fake_random), 0);
    assert_int_equal(gw_ticket_keys_sealing(&k, 1050, &seal), 0);
    /* within the lifetime: the current key */
    assert_int_equal(gw_ticket_keys_opening(&k, seal.name, 1099, &open), 1);
    assert_memory_equal(open.cipher, seal.cipher, sizeof(seal.cipher));
    assert_memory_equal(open.mac, seal.mac, sizeof(seal.mac));
    /* rotated: still opens, as the previous key, to be renewed */
    gw_ticket_key next;
    assert_int_equal(gw_ticket_keys_sealing(&k, 1100, &next), 0);
    assert_memory_not_equal(next.name, seal.name, sizeof(seal.name));
    assert_memory_not_equal(next.cipher, seal.cipher, sizeof(seal.cipher));
    assert_int_equal(gw_ticket_keys_opening(&k, seal.name, 1150, &open), 2);
    assert_memory_equal(open.cipher, seal.cipher, sizeof(seal.cipher));
    assert_int_equal(gw_ticket_keys_opening(&k, next.name, 1150, &open), 1);
    /* rotated again: the first key is gone */
    assert_int_equal(gw_ticket_keys_opening(&k, seal.name, 1200, &open), 0);
    assert_int_equal(gw_ticket_keys_opening(&k, next.name, 1200, &open), 2);
    assert_int_equal((int)k.rotations, 2);
    gw_ticket_keys_destroy(&k);
}

static void idle_for_two_lifetimes_keeps_no_previous_key(void **state)
{
    (void)state;
    gw_ticket_keys k;
    gw_ticket_key seal, open;
    assert_int_equal(gw_ticket_keys_init(&k, 100, 0, fake_random), 0);
    assert_int_equal(gw_ticket_keys_sealing(&k, 10, &seal), 0);
    assert_int_equal(gw_ticket_keys_opening(&k, seal.name, 250, &open), 0);
    assert_int_equal((int)k.rotations, 1);
    assert_false(k.have_previous);
    gw_ticket_keys_destroy(&k);
}

static void unknown_name_does_not_open(void **state)
{
    (void)state;
    gw_ticket_keys k;
    gw_ticket_key open;
    unsigned char name[GW_TICKET_NAME_LEN] = {0};
    assert_int_equal(gw_ticket_keys_init(&k, 100, 0, fake_random), 0);
    assert_int_equal(gw_ticket_keys_opening(&k, name, 1, &open), 0);
    gw_ticket_keys_destroy(&k);
}

static void failing_random_source_issues_no_key(void **state)
{
    (void)state;
    gw_ticket_keys k;
    gw_ticket_key seal;
    random_fails = true;
    assert_int_equal(gw_ticket_keys_init(&k, 100, 0, fake_random), -1);
    random_fails = false;
    assert_int_equal(gw_ticket_keys_init(&k, 100, 0, fake_random), 0);
    random_fails = true;
    assert_int_equal(gw_ticket_keys_sealing(&k, 5, &seal), 0); /* no rotation due */
    assert_int_equal(gw_ticket_keys_sealing(&k, 100, &seal), -1);
    assert_int_equal(gw_ticket_keys_opening(&k, seal.name, 100, &seal), -1);
    gw_ticket_keys_destroy(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(sealed_key_opens_then_renews_then_expires, setup),
        cmocka_unit_test_setup(idle_for_two_lifetimes_keeps_no_previous_key, setup),
        cmocka_unit_test_setup(unknown_name_does_not_open, setup),
        cmocka_unit_test_setup(failing_random_source_issues_no_key, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
