/* Prints the documented example configuration (deploy/gateway/iotgw.conf.example)
 * or, with --markdown, the option reference of docs/configuration.md, both
 * from the option table of gateway/lib/config.c:
 *
 *   gen_config_example > deploy/gateway/iotgw.conf.example
 *   gen_config_example --markdown
 *
 * The unit tests fail when the committed files differ from this output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_parse.h"

int main(int argc, char **argv)
{
    int rc = 1;
    char *buf = NULL;
    size_t need = 0;
    bool markdown = argc == 2 && strcmp(argv[1], "--markdown") == 0;
    if (argc > 2 || (argc == 2 && !markdown)) {
        fprintf(stderr, "usage: %s [--markdown]\n", argv[0]);
        return 2;
    }
    iot_status (*write)(char *, size_t, size_t *) =
        markdown ? gw__config_write_markdown : gw_config_write_example;
    /* First call measures, second call writes. */
    (void)write(NULL, 0, &need);
    buf = malloc(need + 1);
    if (buf == NULL) {
        fprintf(stderr, "gen_config_example: out of memory\n");
        goto out;
    }
    if (write(buf, need + 1, &need) != IOT_OK) {
        fprintf(stderr, "gen_config_example: the text did not fit its buffer\n");
        goto out;
    }
    if (fwrite(buf, 1, need, stdout) != need || fflush(stdout) != 0) {
        fprintf(stderr, "gen_config_example: cannot write the output\n");
        goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}
