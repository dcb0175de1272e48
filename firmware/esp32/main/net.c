/* Wi-Fi station (esp_wifi, esp_netif, esp_event) and SNTP
 * (esp_netif_sntp.h, ESP-IDF 5.1 and later; esp_sntp.h before). The
 * station follows ESP-IDF's getting_started/station example: connect on
 * STA_START, reconnect on STA_DISCONNECTED, ready on IP_EVENT_STA_GOT_IP. */
#include "net.h"

#include <string.h>
#include <time.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/event_groups.h"

#include "iotd/port.h"

static const char *TAG = "iotd";

#define CONNECTED_BIT ((EventBits_t)1 << 0)

static EventGroupHandle_t s_events;
static bool s_sntp;

static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)data;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        (void)esp_wifi_connect();
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        xEventGroupClearBits(s_events, CONNECTED_BIT);
        /* The driver paces association attempts; the core paces uploads. */
        (void)esp_wifi_connect();
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        xEventGroupSetBits(s_events, CONNECTED_BIT);
    }
}

/* Copies a NUL-terminated string into a fixed wifi_config_t field. */
static bool copy_field(uint8_t *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n > cap)
        return false;
    memset(dst, 0, cap);
    memcpy(dst, src, n);
    return true;
}

/* The network stack, the event loop and the Wi-Fi driver, with this
 * file's event handler. */
static esp_err_t init_stack(void)
{
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    esp_err_t err = esp_netif_init();

    if (err != ESP_OK)
        goto out;
    err = esp_event_loop_create_default();
    if (err != ESP_OK)
        goto out;
    if (esp_netif_create_default_wifi_sta() == NULL) {
        err = ESP_FAIL;
        goto out;
    }
    err = esp_wifi_init(&init);
    if (err != ESP_OK)
        goto out;
    err = esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_event, NULL, NULL);
    if (err != ESP_OK)
        goto out;
    err = esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_event, NULL, NULL);
out:
    return err;
}

/* Starts the station with the credentials in sta. */
static esp_err_t start_station(wifi_config_t *sta)
{
    /* The credentials come from Kconfig or NVS at every boot: keeping a
     * copy in the driver's flash storage would only wear the flash at
     * every deep-sleep wake. */
    esp_err_t err = esp_wifi_set_storage(WIFI_STORAGE_RAM);

    if (err != ESP_OK)
        goto out;
    err = esp_wifi_set_mode(WIFI_MODE_STA);
    if (err != ESP_OK)
        goto out;
    err = esp_wifi_set_config(WIFI_IF_STA, sta);
    if (err != ESP_OK)
        goto out;
    err = esp_wifi_start();
out:
    return err;
}

bool net_start(const char *ssid, const char *password, uint32_t wait_ms)
{
    wifi_config_t sta;
    esp_err_t err = ESP_ERR_NO_MEM;

    memset(&sta, 0, sizeof(sta));
    /* 32 bytes of SSID, 63 characters of passphrase (64 would be a raw
     * key, which the NUL-terminated field cannot tell apart). */
    if (ssid[0] == '\0' || !copy_field(sta.sta.ssid, sizeof(sta.sta.ssid), ssid) ||
        !copy_field(sta.sta.password, sizeof(sta.sta.password) - 1, password)) {
        ESP_LOGE(TAG, "wifi.config_invalid: set the SSID (1-32 bytes) and password (up to 63)");
        return false;
    }
    sta.sta.threshold.authmode = WIFI_AUTH_WPA2_PSK;

    s_events = xEventGroupCreate();
    if (s_events == NULL)
        goto out;
    err = init_stack();
    if (err != ESP_OK)
        goto out;
    err = start_station(&sta);
out:
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "wifi.start_failed: %s", esp_err_to_name(err));
        return false;
    }
    EventBits_t bits =
        xEventGroupWaitBits(s_events, CONNECTED_BIT, pdFALSE, pdTRUE, pdMS_TO_TICKS(wait_ms));
    if ((bits & CONNECTED_BIT) == 0)
        ESP_LOGW(TAG, "wifi.not_connected: no IP address yet; readings are queued meanwhile");
    return true;
}

bool net_connected(void)
{
    return s_events != NULL && (xEventGroupGetBits(s_events) & CONNECTED_BIT) != 0;
}

void net_sntp_start(const char *server, uint32_t wait_ms)
{
    esp_sntp_config_t cfg = ESP_NETIF_SNTP_DEFAULT_CONFIG(server);
    esp_err_t err = esp_netif_sntp_init(&cfg);

    if (err != ESP_OK) {
        ESP_LOGW(TAG, "sntp.start_failed: %s", esp_err_to_name(err));
        return;
    }
    s_sntp = true;
    /* The RTC keeps the time through deep sleep: only a clock that was
     * never set is worth waiting for. */
    if (wait_ms == 0 || time(NULL) >= (time_t)IOTD_MIN_WALL_TIME)
        return;
    if (esp_netif_sntp_sync_wait(pdMS_TO_TICKS(wait_ms)) != ESP_OK)
        ESP_LOGW(TAG, "sntp.not_synced: readings carry no time until the clock is set");
}

void net_stop(void)
{
    if (s_sntp) {
        esp_netif_sntp_deinit();
        s_sntp = false;
    }
    (void)esp_wifi_stop();
}
