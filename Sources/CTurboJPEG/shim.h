#ifndef TENDON_CTURBOJPEG_SHIM_H
#define TENDON_CTURBOJPEG_SHIM_H
// libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev).
#include <turbojpeg.h>
#endif
