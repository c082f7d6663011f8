/* GET /herald.js, /herald.d.ts, /demo, /demo/call and /dashboard: the browser client, its types,
 * the demo pages and the operator's dashboard, built into the binary (assembler .incbin) so a
 * copied herald serves them with no files. */
#include <string.h>

#include "api/handlers.h"

#define ASSET(sym, file)                                                                           \
    __asm__(".section .rodata\n"                                                                   \
            ".global " #sym "\n"                                                                   \
            ".balign 16\n" #sym ":\n"                                                              \
            ".incbin \"" file "\"\n"                                                               \
            ".global " #sym "_end\n" #sym "_end:\n"                                                \
            ".byte 0\n"                                                                            \
            ".previous\n");                                                                        \
    extern const char sym[], sym##_end[]

ASSET(hr_asset_herald_js, "clients/js/herald.js");
ASSET(hr_asset_herald_dts, "clients/js/herald.d.ts");
ASSET(hr_asset_demo_html, "clients/demo/index.html");
ASSET(hr_asset_call_html, "clients/demo/call.html");
ASSET(hr_asset_dashboard_html, "clients/dashboard/index.html");

typedef struct asset_s {
    const char *path;
    const char *content_type;
    const char *start, *end;
} asset_t;

void hr_handle_asset(hr_exchange_t *ex)
{
    const asset_t assets[] = {
        {"/herald.js", "text/javascript; charset=utf-8", hr_asset_herald_js,
         hr_asset_herald_js_end},
        {"/herald.d.ts", "application/typescript; charset=utf-8", hr_asset_herald_dts,
         hr_asset_herald_dts_end},
        {"/demo", "text/html; charset=utf-8", hr_asset_demo_html, hr_asset_demo_html_end},
        {"/demo/call", "text/html; charset=utf-8", hr_asset_call_html, hr_asset_call_html_end},
        {"/dashboard", "text/html; charset=utf-8", hr_asset_dashboard_html,
         hr_asset_dashboard_html_end},
    };
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        const asset_t *asset = &assets[i];
        if (strlen(asset->path) != ex->req->path_len ||
            memcmp(asset->path, ex->req->path, ex->req->path_len) != 0)
            continue;
        hr_respond(ex, 200, asset->content_type, asset->start, (size_t)(asset->end - asset->start),
                   "Cache-Control: no-cache\r\n");
        return;
    }
    hr_respond_error(ex, 404, "no such asset");
}
