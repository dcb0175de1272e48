/* What the latency subscriber keeps per device: which gateway sequence
 * numbers (`seq`) and device sequence numbers (`dseq`) arrived. */
#ifndef ML_TRACK_H
#define ML_TRACK_H

#include <stddef.h>
#include <stdint.h>

/* A set of integers in pages of 64 Ki bits, for numbers that come in runs. */
typedef struct ml_bitset {
    struct ml_page **pages;
    size_t n, cap;
} ml_bitset;

/* Returns 1 if v was already in the set, 0 if it was added, -1 out of memory. */
int ml_bitset_add(ml_bitset *s, uint64_t v);
int ml_bitset_has(const ml_bitset *s, uint64_t v);
void ml_bitset_free(ml_bitset *s);

typedef struct ml_device {
    char name[72];
    ml_bitset gseq, dseq;
    uint64_t received, duplicates, unique_dseq;
    int64_t gseq_min, gseq_max;
} ml_device;

typedef struct ml_devices {
    ml_device **slots; /* open addressing by name */
    size_t cap, n;
} ml_devices;

/* The device of that name, added if new; NULL out of memory. */
ml_device *ml_devices_get(ml_devices *ds, const char *name);
ml_device *ml_devices_find(const ml_devices *ds, const char *name);
void ml_devices_free(ml_devices *ds);

#endif
