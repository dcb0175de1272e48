/* Enrollment and renewal over a fake port and a fake credential store:
 * first enrollment, the renewal window and its jitter, backoff, Retry-After,
 * 202 pending, 409 -> new key, commit only after an admitted probe, and
 * rollback to the old certificate. */
#include "core_test.h"

#include <stdio.h>

#include "fake_port.h"
#include "iotd/enroll.h"

#define DAY      86400
#define LIFE     (90 * DAY)
#define EST_MAX  16
#define WORK_CAP 4096

typedef struct est_answer {
    iotd_status st; /* IOTD_ENET: no response */
    int status;
    bool has_ra;
    uint32_t ra;
    int cert_key; /* 200: a certificate for this key (-1: for the candidate's) */
} est_answer;

typedef struct slot {
    bool has_cert;
    int key;
    iotd_cert_info info;
} slot;

typedef struct fake_cred {
    iotd_cred_port cred;
    fake_port *fp;
    slot active, cand;
    int cand_key; /* 0: none */
    int next_key;
    est_answer est[EST_MAX];
    size_t n_est, est_pos;
    iotd_est_op ops[EST_MAX];
    int csr_keys[EST_MAX];
    size_t n_ops;
    est_answer probes[EST_MAX];
    size_t n_probes, probe_pos;
    uint32_t commits, drops, keygens, cacerts;
} fake_cred;

static fake_port fp;
static fake_cred fc;
static iotd_enroll en;
static char work[WORK_CAP];

/* A fake certificate: "CERT key not_before". */
static size_t fake_pkcs7(int key, int64_t nb, char *out, size_t cap)
{
    char der[64];
    size_t n = 0;
    int len = snprintf(der, sizeof(der), "CERT %d %lld", key, (long long)nb);
    (void)iotd_base64_encode((const uint8_t *)der, (size_t)len, out, cap, &n);
    return n;
}

static iotd_status f_keygen(void *ctx)
{
    fake_cred *c = ctx;
    c->cand_key = ++c->next_key;
    c->cand.has_cert = false;
    c->keygens++;
    return IOTD_OK;
}

static iotd_status f_csr(void *ctx, uint8_t *der, size_t cap, size_t *len)
{
    fake_cred *c = ctx;
    if (c->cand_key == 0)
        return IOTD_ENOENT;
    int n = snprintf((char *)der, cap, "CSR %d", c->cand_key);
    *len = (size_t)n;
    return IOTD_OK;
}

static iotd_status f_info(void *ctx, iotd_cred_slot s, iotd_cert_info *info)
{
    fake_cred *c = ctx;
    const slot *sl = s == IOTD_CRED_ACTIVE ? &c->active : &c->cand;
    if (!sl->has_cert)
        return IOTD_ENOENT;
    *info = sl->info;
    return IOTD_OK;
}

static iotd_status f_store(void *ctx, const uint8_t *p7, size_t len)
{
    fake_cred *c = ctx;
    char text[64];
    int key = 0;
    long long nb = 0;
    if (len >= sizeof(text))
        return IOTD_ECORRUPT;
    memcpy(text, p7, len);
    text[len] = '\0';
    if (sscanf(text, "CERT %d %lld", &key, &nb) != 2 || key != c->cand_key || key == 0)
        return IOTD_ECORRUPT;
    c->cand.has_cert = true;
    c->cand.key = key;
    c->cand.info.not_before = nb;
    c->cand.info.not_after = nb + LIFE;
    return IOTD_OK;
}

static iotd_status f_commit(void *ctx)
{
    fake_cred *c = ctx;
    if (!c->cand.has_cert)
        return IOTD_ENOENT;
    c->active = c->cand;
    c->cand.has_cert = false;
    c->cand_key = 0;
    c->commits++;
    return IOTD_OK;
}

static iotd_status f_drop(void *ctx)
{
    fake_cred *c = ctx;
    c->cand.has_cert = false;
    c->cand_key = 0;
    c->drops++;
    return IOTD_OK;
}

static iotd_status f_cacerts(void *ctx, const uint8_t *p7, size_t len)
{
    fake_cred *c = ctx;
    c->cacerts++;
    return len == 4 && memcmp(p7, "CAS!", 4) == 0 ? IOTD_OK : IOTD_ECORRUPT;
}

static iotd_status answer(const est_answer *a, char *resp, size_t cap, iotd_http_result *r)
{
    memset(r, 0, sizeof(*r));
    if (a->st != IOTD_OK)
        return a->st;
    r->status = a->status;
    r->has_retry_after = a->has_ra;
    r->retry_after_s = a->ra;
    if (a->status == 200 && resp != NULL) {
        int key = a->cert_key < 0 ? fc.cand_key : a->cert_key;
        r->body_len = fake_pkcs7(key, fp.wall, resp, cap);
    } else if (resp != NULL && cap > 20) {
        r->body_len = (size_t)snprintf(resp, cap, "{\"error\":\"x\"}");
    }
    return IOTD_OK;
}

static iotd_status f_est(void *ctx, iotd_est_op op, const char *body, size_t len, char *resp,
                         size_t cap, iotd_http_result *r)
{
    fake_cred *c = ctx;
    size_t n = 0;
    char csr[32];
    if (c->n_ops < EST_MAX) {
        c->ops[c->n_ops] = op;
        c->csr_keys[c->n_ops] = -1;
        if (body != NULL && len < sizeof(csr)) {
            memcpy(csr, body, len);
            if (iotd_base64_decode_inplace(csr, len, &n) == IOTD_OK) {
                csr[n] = '\0';
                (void)sscanf(csr, "CSR %d", &c->csr_keys[c->n_ops]);
            }
        }
        c->n_ops++;
    }
    if (op == IOTD_EST_CACERTS) {
        r->status = 200;
        r->has_retry_after = false;
        (void)iotd_base64_encode((const uint8_t *)"CAS!", 4, resp, cap, &r->body_len);
        return IOTD_OK;
    }
    if (c->est_pos >= c->n_est)
        return IOTD_ENET;
    return answer(&c->est[c->est_pos++], resp, cap, r);
}

static iotd_status f_probe(void *ctx, iotd_http_result *r)
{
    fake_cred *c = ctx;
    if (c->probe_pos >= c->n_probes)
        return IOTD_ENET;
    return answer(&c->probes[c->probe_pos++], NULL, 0, r);
}

static void on(est_answer a)
{
    fc.est[fc.n_est++] = a;
}

static void probe_on(est_answer a)
{
    fc.probes[fc.n_probes++] = a;
}

static const est_answer ISSUED = {IOTD_OK, 200, false, 0, -1};
static const est_answer LOST = {IOTD_ENET, 0, false, 0, 0};

static void setup(bool with_cert, uint32_t random)
{
    memset(&fc, 0, sizeof(fc));
    fake_port_init(&fp);
    fp.random_fixed = true;
    fp.random_value = random;
    fc.fp = &fp;
    fc.cred = (iotd_cred_port){&fc,      f_keygen, f_csr,     f_info, f_store,
                               f_commit, f_drop,   f_cacerts, f_est,  f_probe};
    fc.next_key = 100;
    if (with_cert) {
        fc.active.has_cert = true;
        fc.active.key = 1;
        fc.active.info.not_before = fp.wall;
        fc.active.info.not_after = fp.wall + LIFE;
    }
}

static iotd_status start(void)
{
    iotd_enroll_config cfg;
    iotd_enroll_config_init(&cfg);
    cfg.backoff_base_ms = 1000;
    cfg.backoff_max_ms = 60000;
    return iotd_enroll_init(&en, &fp.port, &fc.cred, &cfg, work, sizeof(work));
}

/* Steps at uptime now until the machine is idle; returns the last delay. */
static uint32_t step(void)
{
    uint32_t d = iotd_enroll_step(&en, fp.uptime);
    for (int i = 0; d == 0 && i < 8; i++)
        d = iotd_enroll_step(&en, fp.uptime);
    return d;
}

static void advance_ms(uint64_t ms)
{
    fp.uptime += ms;
    fp.wall += (int64_t)(ms / 1000u);
}

static void renewal_due(void)
{
    advance_ms((uint64_t)(LIFE / 4 * 3 + 1) * 1000u);
}

/* ---- first enrollment ------------------------------------------------------ */

static void first_enrollment_from_token(void **state)
{
    (void)state;
    setup(false, 0);
    on(ISSUED);
    CT_EQ(start(), IOTD_OK);
    CT_FALSE(iotd_enroll_has_certificate(&en));
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_CACERTS);
    (void)step();
    CT_EQ(fc.n_ops, 2);
    CT_EQ(fc.ops[0], IOTD_EST_CACERTS);
    CT_EQ(fc.ops[1], IOTD_EST_ENROLL_TOKEN);
    CT_EQ(fc.csr_keys[1], 101);
    CT_EQ(fc.cacerts, 1);
    /* Nothing to fall back on: the first certificate is used at once. */
    CT_EQ(fc.commits, 1);
    CT_EQ(fc.active.key, 101);
    CT_EQ(fc.n_probes, 0);
    CT_TRUE(iotd_enroll_has_certificate(&en));
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_WAIT);
    CT_EQ(en.stats.enrolled, 1);
    CT_EQ(fake_event_count(&fp, "enroll.enrolled"), 1);
}

static void first_enrollment_with_bootstrap_certificate(void **state)
{
    (void)state;
    setup(false, 0);
    on(ISSUED);
    iotd_enroll_config cfg;
    iotd_enroll_config_init(&cfg);
    cfg.first_auth = IOTD_ENROLL_AUTH_BOOTSTRAP;
    cfg.fetch_cacerts = false;
    CT_EQ(iotd_enroll_init(&en, &fp.port, &fc.cred, &cfg, work, sizeof(work)), IOTD_OK);
    (void)step();
    CT_EQ(fc.n_ops, 1);
    CT_EQ(fc.ops[0], IOTD_EST_ENROLL_BOOTSTRAP);
    CT_EQ(fc.commits, 1);
}

static void init_refuses_short_buffer(void **state)
{
    (void)state;
    iotd_enroll_config cfg;
    setup(false, 0);
    iotd_enroll_config_init(&cfg);
    CT_EQ(iotd_enroll_init(&en, &fp.port, &fc.cred, &cfg, work, IOTD_ENROLL_WORK_MIN - 1),
          IOTD_EINVAL);
    CT_EQ(iotd_enroll_init(&en, &fp.port, NULL, &cfg, work, sizeof(work)), IOTD_EINVAL);
}

/* ---- the renewal window --------------------------------------------------------- */

static void renewal_starts_at_two_thirds_plus_jitter(void **state)
{
    (void)state;
    int64_t nb;
    setup(true, 0);
    nb = fc.active.info.not_before;
    CT_EQ(start(), IOTD_OK);
    CT_EQ(iotd_enroll_renew_at(&en), nb + LIFE / 3 * 2);
    setup(true, UINT32_MAX);
    CT_EQ(start(), IOTD_OK);
    CT_EQ(iotd_enroll_renew_at(&en), nb + LIFE / 3 * 2 + LIFE / 12);
    setup(true, 0x80000000u);
    CT_EQ(start(), IOTD_OK);
    CT_IN_RANGE(iotd_enroll_renew_at(&en), nb + LIFE / 3 * 2 + 1,
                nb + LIFE / 3 * 2 + LIFE / 12 - 1);
}

static void nothing_happens_before_the_window(void **state)
{
    (void)state;
    setup(true, UINT32_MAX);
    CT_EQ(start(), IOTD_OK);
    int64_t at = iotd_enroll_renew_at(&en);
    /* One second before: a wait of at most a minute, no request. */
    fp.wall = at - 1;
    CT_EQ(step(), 1000);
    fp.wall = at - 3600;
    CT_EQ(step(), 60000);
    CT_EQ(fc.n_ops, 0);
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_WAIT);
    /* Without a set clock it only looks again. */
    fp.wall_known = false;
    fp.wall = at + 10;
    CT_EQ(step(), 1000);
    CT_EQ(fc.n_ops, 0);
    fp.wall_known = true;
    on(ISSUED);
    (void)step();
    CT_EQ(fc.n_ops, 1);
    CT_EQ(fc.ops[0], IOTD_EST_REENROLL);
}

static void renew_now_skips_the_wait(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    on(ISSUED);
    iotd_enroll_renew_now(&en);
    (void)step();
    CT_EQ(fc.n_ops, 1);
    CT_EQ(fc.ops[0], IOTD_EST_REENROLL);
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_PROBE);
}

/* ---- commit only after an admitted probe -------------------------------------------- */

static void candidate_commits_only_after_an_admitted_request(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    renewal_due();
    on(ISSUED);
    probe_on(LOST);
    probe_on((est_answer){IOTD_OK, 503, false, 0, 0});
    probe_on((est_answer){IOTD_OK, 204, false, 0, 0});
    uint32_t d = step();
    CT_EQ(fc.csr_keys[0], 101);
    CT_TRUE(fc.cand.has_cert);
    /* The probe got no answer: the old certificate stays active. */
    CT_EQ(fc.active.key, 1);
    CT_EQ(fc.commits, 0);
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_PROBE);
    CT_EQ(d, 500);
    /* Before the delay nothing happens. */
    advance_ms(499);
    CT_EQ(step(), 1);
    CT_EQ(fc.probe_pos, 1);
    advance_ms(1);
    CT_EQ(step(), 1000); /* 503: still waiting, the delay grew */
    CT_EQ(fc.commits, 0);
    advance_ms(1000);
    (void)step();
    CT_EQ(fc.commits, 1);
    CT_EQ(fc.active.key, 101);
    CT_EQ(fc.active.info.not_before, fp.wall - 1);
    CT_EQ(en.stats.renewed, 1);
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_WAIT);
    /* The next renewal is two thirds into the new certificate. */
    CT_EQ(iotd_enroll_renew_at(&en), fc.active.info.not_before + LIFE / 3 * 2);
}

static void refused_candidate_rolls_back_to_the_old_certificate(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    renewal_due();
    on(ISSUED);
    on(ISSUED);
    probe_on((est_answer){IOTD_OK, 403, false, 0, 0});
    probe_on((est_answer){IOTD_OK, 200, false, 0, 0});
    (void)step();
    CT_EQ(fc.drops, 1);
    CT_EQ(fc.commits, 0);
    CT_EQ(fc.active.key, 1);
    CT_FALSE(fc.cand.has_cert);
    CT_EQ(en.stats.rollbacks, 1);
    CT_EQ(fake_event_count(&fp, "enroll.rollback"), 1);
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_REQUEST);
    advance_ms(60000);
    (void)step();
    /* The second try used a new key. */
    CT_EQ(fc.n_ops, 2);
    CT_EQ(fc.csr_keys[1], 102);
    CT_EQ(fc.active.key, 102);
}

static void reset_during_probe_resumes_the_probe(void **state)
{
    (void)state;
    setup(true, 0);
    fc.cand_key = 7;
    fc.cand.has_cert = true;
    fc.cand.key = 7;
    fc.cand.info = fc.active.info;
    probe_on((est_answer){IOTD_OK, 200, false, 0, 0});
    CT_EQ(start(), IOTD_OK);
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_PROBE);
    (void)step();
    CT_EQ(fc.n_ops, 0);
    CT_EQ(fc.active.key, 7);
}

/* ---- answers ------------------------------------------------------------------------ */

static void no_answer_backs_off_and_keeps_the_key(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    renewal_due();
    on(LOST);
    on(LOST);
    on(LOST);
    CT_EQ(step(), 500);
    advance_ms(500);
    CT_EQ(step(), 1000);
    advance_ms(1000);
    CT_EQ(step(), 2000);
    CT_EQ(fc.n_ops, 3);
    /* Same key each time: a lost answer is issued again, not a second one. */
    CT_EQ(fc.csr_keys[0], 101);
    CT_EQ(fc.csr_keys[2], 101);
    CT_EQ(fc.keygens, 1);
    CT_EQ(en.stats.no_answer, 3);
    CT_EQ(fc.active.key, 1);
}

static void pending_waits_for_retry_after(void **state)
{
    (void)state;
    setup(false, 0);
    CT_EQ(start(), IOTD_OK);
    on((est_answer){IOTD_OK, 202, true, 120, 0});
    on((est_answer){IOTD_OK, 202, false, 0, 0});
    on(ISSUED);
    CT_EQ(step(), 120000);
    CT_EQ(en.stats.pending, 1);
    advance_ms(119999);
    CT_EQ(step(), 1);
    CT_EQ(fc.n_ops, 2);
    advance_ms(1);
    CT_EQ(step(), 60000); /* no Retry-After: the configured default */
    advance_ms(60000);
    (void)step();
    CT_TRUE(iotd_enroll_has_certificate(&en));
    /* Pending never changes the key. */
    CT_EQ(fc.csr_keys[1], 101);
    CT_EQ(fc.csr_keys[3], 101);
    CT_EQ(fake_event_count(&fp, "enroll.pending"), 2);
}

static void retry_after_jitter_never_shortens(void **state)
{
    (void)state;
    setup(false, UINT32_MAX);
    CT_EQ(start(), IOTD_OK);
    on((est_answer){IOTD_OK, 202, true, 80, 0});
    CT_EQ(step(), 90000); /* 80 s and an eighth more at most */
}

static void busy_gateway_retry_after_is_honoured(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    renewal_due();
    on((est_answer){IOTD_OK, 429, true, 300, 0});
    on((est_answer){IOTD_OK, 503, true, 30, 0});
    on((est_answer){IOTD_OK, 401, false, 0, 0});
    CT_EQ(step(), 300000);
    advance_ms(300000);
    CT_EQ(step(), 30000);
    advance_ms(30000);
    /* A refusal without Retry-After backs off; the counter counts from the start. */
    CT_EQ(step(), 500);
    CT_EQ(en.stats.refused, 3);
    CT_EQ(fake_event_count(&fp, "enroll.refused"), 3);
    CT_STR_EQ(fp.last_msg, "{\"error\":\"x\"}");
}

static void conflict_makes_a_new_key(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    renewal_due();
    on((est_answer){IOTD_OK, 409, false, 0, 0});
    on(ISSUED);
    probe_on((est_answer){IOTD_OK, 200, false, 0, 0});
    CT_EQ(step(), 500);
    CT_EQ(en.stats.conflicts, 1);
    CT_EQ(fc.active.key, 1);
    advance_ms(500);
    (void)step();
    CT_EQ(fc.csr_keys[0], 101);
    CT_EQ(fc.csr_keys[1], 102);
    CT_EQ(fc.active.key, 102);
}

static void unusable_answer_is_retried(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    renewal_due();
    on((est_answer){IOTD_OK, 200, false, 0, 55}); /* for another key */
    CT_EQ(step(), 500);
    CT_FALSE(fc.cand.has_cert);
    CT_EQ(fc.active.key, 1);
    CT_EQ(fake_event_count(&fp, "enroll.bad_answer"), 1);
    CT_EQ(iotd_enroll_get_state(&en), IOTD_ENROLL_REQUEST);
}

static void expired_certificate_enrolls_again(void **state)
{
    (void)state;
    setup(true, 0);
    CT_EQ(start(), IOTD_OK);
    advance_ms((uint64_t)(LIFE + 1) * 1000u);
    on(ISSUED);
    (void)step();
    /* simplereenroll cannot authenticate with an expired certificate. */
    CT_EQ(fc.ops[0], IOTD_EST_ENROLL_TOKEN);
    CT_EQ(fc.commits, 1);
}

/* ---- base64 ---------------------------------------------------------------------------- */

static void base64_round_trip(void **state)
{
    (void)state;
    char buf[64];
    size_t n = 0;
    CT_EQ(iotd_base64_encode((const uint8_t *)"hello!?", 7, buf, sizeof(buf), &n), IOTD_OK);
    CT_STR_EQ(buf, "aGVsbG8hPw==");
    CT_EQ(n, 12);
    CT_EQ(iotd_base64_encode((const uint8_t *)"hello!?", 7, buf, 12, &n), IOTD_ENOSPC);
    char in[] = "aGVs\r\nbG8h\nPw==\n";
    CT_EQ(iotd_base64_decode_inplace(in, strlen(in), &n), IOTD_OK);
    CT_EQ(n, 7);
    CT_MEM_EQ(in, "hello!?", 7);
    char bad[] = "aGV*";
    CT_EQ(iotd_base64_decode_inplace(bad, strlen(bad), &n), IOTD_EINVAL);
    char lone[] = "aGVsb";
    CT_EQ(iotd_base64_decode_inplace(lone, strlen(lone), &n), IOTD_EINVAL);
    char after_pad[] = "aG==aG";
    CT_EQ(iotd_base64_decode_inplace(after_pad, strlen(after_pad), &n), IOTD_EINVAL);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(first_enrollment_from_token),
        CT_TEST(first_enrollment_with_bootstrap_certificate),
        CT_TEST(init_refuses_short_buffer),
        CT_TEST(renewal_starts_at_two_thirds_plus_jitter),
        CT_TEST(nothing_happens_before_the_window),
        CT_TEST(renew_now_skips_the_wait),
        CT_TEST(candidate_commits_only_after_an_admitted_request),
        CT_TEST(refused_candidate_rolls_back_to_the_old_certificate),
        CT_TEST(reset_during_probe_resumes_the_probe),
        CT_TEST(no_answer_backs_off_and_keeps_the_key),
        CT_TEST(pending_waits_for_retry_after),
        CT_TEST(retry_after_jitter_never_shortens),
        CT_TEST(busy_gateway_retry_after_is_honoured),
        CT_TEST(conflict_makes_a_new_key),
        CT_TEST(unusable_answer_is_retried),
        CT_TEST(expired_certificate_enrolls_again),
        CT_TEST(base64_round_trip),
    };
    return CT_RUN(tests);
}
