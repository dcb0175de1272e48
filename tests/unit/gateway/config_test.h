/* What the configuration's two unit tests (test_config: values, no disk;
 * test_config_files: the files a configuration names) share. */
#ifndef CONFIG_TEST_H
#define CONFIG_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include "iot/status.h"

/* The files a valid configuration names: {key, file name in its dir}. */
extern const char *const gwt_config_files[][2];
#define GWT_CONFIG_N_FILES 8

/* "dir/name" into buf (a test failure if it does not fit). */
void gwt_path_of(char *buf, size_t size, const char *dir, const char *name);

/* The required keys, the files under dir, mqtt_host = host and the outbox
 * at dir/outbox/outbox.db, as configuration text into buf. */
void gwt_required_text(char *buf, size_t size, const char *dir, const char *host);

/* The warnings a validation gave, collected by gwt_collect. */
typedef struct gwt_warnings {
    int n;
    char key[8][32];
    char msg[8][IOT_ERR_MSG_MAX];
} gwt_warnings;

void gwt_collect(void *ctx, const char *key, const char *message);
bool gwt_warned(const gwt_warnings *w, const char *key);

/* A test failure naming both unless msg contains fragment. */
void gwt_assert_contains(const char *msg, const char *fragment);

#endif
