/* herald's version: --version, the start-up line, /healthz and herald_build_info. */
#ifndef HR_VERSION_H
#define HR_VERSION_H

#define HR_VERSION "0.21.0"

#endif
