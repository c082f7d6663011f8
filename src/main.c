/* herald: realtime delivery server. */
#include "core/config.h"
#include "core/log.h"
#include "core/server.h"

int main(int argc, char **argv)
{
    static hr_config_t config; /* read-only once loaded; shared by every worker */
    int rc = hr_config_load(&config, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    hr_log_set_level(config.log_level);
    return hr_server_run(&config);
}
