#include "iotd_posix/sensors.h"

#include <math.h>
#include <string.h>
#include <time.h>

static const double PI = 3.14159265358979323846;

static const iotd_posix_curve DEFAULTS[IOTD_POSIX_SENSOR_KINDS] = {
    [IOTD_POSIX_TEMPERATURE] = {.name = "temperature",
                                .unit = "Cel",
                                .mean = 21.0,
                                .amplitude = 4.0,
                                .peak_hour = 15.0,
                                .noise = 0.15,
                                .min = -40.0,
                                .max = 85.0,
                                .spread = 2.0,
                                .exp10 = -2},
    /* Relative humidity peaks when the air is coolest, before dawn. */
    [IOTD_POSIX_HUMIDITY] = {.name = "humidity",
                             .unit = "%RH",
                             .mean = 50.0,
                             .amplitude = 12.0,
                             .peak_hour = 4.0,
                             .noise = 0.8,
                             .min = 0.0,
                             .max = 100.0,
                             .spread = 8.0,
                             .exp10 = -1},
    [IOTD_POSIX_PRESSURE] = {.name = "pressure",
                             .unit = "Pa",
                             .mean = 101325.0,
                             .amplitude = 120.0,
                             .peak_hour = 10.0,
                             .noise = 15.0,
                             .min = 87000.0,
                             .max = 108500.0,
                             .spread = 400.0,
                             .exp10 = 0},
    [IOTD_POSIX_BATTERY] = {.name = "battery",
                            .unit = "%EL",
                            .mean = 88.0,
                            .amplitude = 0.5,
                            .peak_hour = 15.0,
                            .drift_per_day = -1.5,
                            .noise = 0.05,
                            .min = 0.0,
                            .max = 100.0,
                            .spread = 10.0,
                            .exp10 = -1},
};

const iotd_posix_curve *iotd_posix_curve_default(iotd_posix_sensor_kind kind)
{
    if ((unsigned)kind >= IOTD_POSIX_SENSOR_KINDS)
        return NULL;
    return &DEFAULTS[kind];
}

bool iotd_posix_sensor_kind_parse(const char *name, iotd_posix_sensor_kind *kind)
{
    for (unsigned i = 0; i < IOTD_POSIX_SENSOR_KINDS; i++) {
        if (strcmp(name, DEFAULTS[i].name) == 0) {
            *kind = (iotd_posix_sensor_kind)i;
            return true;
        }
    }
    return false;
}

iotd_value iotd_posix_curve_value(const iotd_posix_curve *c, double t_s, double start_s, double z)
{
    double res = pow(10.0, c->exp10);
    double hour = fmod(t_s, 86400.0) / 3600.0;
    double v = c->mean + c->amplitude * cos(2.0 * PI * (hour - c->peak_hour) / 24.0) +
               c->drift_per_day * (t_s - start_s) / 86400.0 + c->noise * z;
    /* Clamp in units of the resolution, so rounding cannot leave the range. */
    double lo = ceil(c->min / res);
    double hi = floor(c->max / res);
    double m = nearbyint(v / res);
    if (!(m >= lo)) /* also catches NaN */
        m = lo;
    if (m > hi)
        m = hi;
    if (m < (double)INT32_MIN)
        m = (double)INT32_MIN;
    if (m > (double)INT32_MAX)
        m = (double)INT32_MAX;
    iotd_value out = {(int32_t)m, c->exp10};
    return out;
}

/* splitmix64: turns any seed into well-spread state. */
uint64_t iotd_posix_seed_mix(uint64_t seed, uint64_t index)
{
    uint64_t z = seed + (index + 1u) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* xorshift64*: statistically good enough for sensor noise, and cheap. */
static uint64_t next_u64(iotd_posix_synth *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double uniform(iotd_posix_synth *s)
{
    return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
}

double iotd_posix_synth_noise(iotd_posix_synth *s)
{
    /* Irwin-Hall with four terms: close to normal, and bounded. */
    double sum = uniform(s) + uniform(s) + uniform(s) + uniform(s);
    return (sum - 2.0) * sqrt(3.0);
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static iotd_status read_channel(void *ctx, iotd_value *out)
{
    iotd_posix_channel *ch = ctx;
    iotd_posix_synth *s = ch->synth;
    if (s->off)
        return IOTD_ENOENT;
    *out =
        iotd_posix_curve_value(&ch->curve, wall_seconds(), s->start_s, iotd_posix_synth_noise(s));
    return IOTD_OK;
}

void iotd_posix_synth_init(iotd_posix_synth *s, const iotd_posix_curve *curves, size_t n,
                           uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->rng = iotd_posix_seed_mix(seed, 0) | 1u; /* xorshift state must not be 0 */
    s->start_s = wall_seconds();
    if (n > IOTD_POSIX_SENSOR_KINDS)
        n = IOTD_POSIX_SENSOR_KINDS;
    s->n = n;
    /* Devices near each other see the same sun a little earlier or later. */
    double phase = (uniform(s) - 0.5) * 3.0;
    for (size_t i = 0; i < n; i++) {
        iotd_posix_channel *ch = &s->chan[i];
        ch->synth = s;
        ch->curve = curves[i];
        ch->curve.mean += (uniform(s) * 2.0 - 1.0) * curves[i].spread;
        ch->curve.peak_hour += phase;
        s->table[i].name = curves[i].name;
        s->table[i].unit = curves[i].unit;
        s->table[i].read = read_channel;
        s->table[i].ctx = ch;
    }
}
