/* Synthetic sensors for the simulator: smooth daily curves plus noise.
 *
 *   value(t) = mean + amplitude * cos(2 pi (hour(t) - peak_hour) / 24)
 *            + drift_per_day * days since start + noise * z
 *
 * clamped to [min, max] and rounded to 10^exp10, where hour(t) is the UTC
 * hour of day shifted by the device's own phase and z is a bounded,
 * roughly normal sample (|z| <= IOTD_POSIX_NOISE_Z_MAX). Each device draws
 * its phase, its offset from the mean and its noise from its own seed, so
 * devices differ and a run can be repeated.
 */
#ifndef IOTD_POSIX_SENSORS_H
#define IOTD_POSIX_SENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/port.h"

typedef enum iotd_posix_sensor_kind {
    IOTD_POSIX_TEMPERATURE = 0, /* Cel */
    IOTD_POSIX_HUMIDITY,        /* %RH */
    IOTD_POSIX_PRESSURE,        /* Pa */
    IOTD_POSIX_BATTERY,         /* %EL, draining */
    IOTD_POSIX_SENSOR_KINDS
} iotd_posix_sensor_kind;

/* 2 * sqrt(3): the sum of four uniform samples, centred and scaled to unit
 * variance, never exceeds it. */
#define IOTD_POSIX_NOISE_Z_MAX 3.4641016151377544

typedef struct iotd_posix_curve {
    const char *name; /* SenML name */
    const char *unit; /* SenML unit */
    double mean;
    double amplitude;     /* of the daily cycle */
    double peak_hour;     /* hour of day (0-24) of the cycle's maximum */
    double drift_per_day; /* slow change, e.g. a draining battery */
    double noise;         /* standard deviation of the noise */
    double min, max;      /* the physical range; values are clamped to it */
    double spread;        /* devices' means differ by up to +/- this */
    int8_t exp10;         /* resolution: values are multiples of 10^exp10 */
} iotd_posix_curve;

/* The curve a sensor of this kind starts from (NULL for an unknown kind). */
const iotd_posix_curve *iotd_posix_curve_default(iotd_posix_sensor_kind kind);

/* "temperature", "humidity", "pressure", "battery". */
bool iotd_posix_sensor_kind_parse(const char *name, iotd_posix_sensor_kind *kind);

/* The curve's value at Unix time t_s for a device that started at start_s,
 * with noise sample z. Pure, so its bounds can be checked. */
iotd_value iotd_posix_curve_value(const iotd_posix_curve *c, double t_s, double start_s, double z);

struct iotd_posix_synth;

typedef struct iotd_posix_channel {
    struct iotd_posix_synth *synth;
    iotd_posix_curve curve; /* this device's copy: its own mean and phase */
} iotd_posix_channel;

/* One device's sensors. Read functions take wall-clock time from
 * CLOCK_REALTIME; the object must not move once initialised (the sensor
 * table points into it). */
typedef struct iotd_posix_synth {
    uint64_t rng;
    double start_s;
    bool off; /* while set, every read fails: the core takes no reading */
    size_t n;
    iotd_posix_channel chan[IOTD_POSIX_SENSOR_KINDS];
    iotd_sensor table[IOTD_POSIX_SENSOR_KINDS];
} iotd_posix_synth;

/* Sets up one sensor per curve (n at most IOTD_POSIX_SENSOR_KINDS; start
 * from iotd_posix_curve_default and change what should differ), each with
 * this device's variation drawn from seed. The sensor table is s->table,
 * s->n rows; names and units point into the curves' strings. */
void iotd_posix_synth_init(iotd_posix_synth *s, const iotd_posix_curve *curves, size_t n,
                           uint64_t seed);

/* A noise sample in [-IOTD_POSIX_NOISE_Z_MAX, IOTD_POSIX_NOISE_Z_MAX]. */
double iotd_posix_synth_noise(iotd_posix_synth *s);

/* A 64-bit seed for device `index` of a run seeded with `seed`. */
uint64_t iotd_posix_seed_mix(uint64_t seed, uint64_t index);

#endif
