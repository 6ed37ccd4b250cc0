// libpng's error handling longjmps, which Swift cannot host, so the read lives here as one C function
// (header-only: a system-library target holds no sources). It decodes to 8-bit samples with the channel
// layout left as the file has it, so the caller can convert like Pillow does.
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int width, height;
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    int channels;
    /// 8, or 16 for grayscale without alpha (Pillow keeps that mode as "I;16" and clips when converting).
    int bitDepth;
    unsigned char *pixels;  // malloc'ed, rows packed; 16-bit samples are native-endian uint16
    char message[200];
} TendonPNGImage;

static inline void tendon_png_error(png_structp png, png_const_charp msg) {
    TendonPNGImage *out = (TendonPNGImage *)png_get_error_ptr(png);
    snprintf(out->message, sizeof out->message, "%s", msg);
    png_longjmp(png, 1);
}

static inline void tendon_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/// 0 on success (free `out->pixels` with free()); -1 with `out->message` set otherwise.
static inline int tendon_png_read(const char *path, TendonPNGImage *out) {
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(out->message, sizeof out->message, "cannot open the file"); return -1; }
    unsigned char sig[8];
    if (fread(sig, 1, 8, fp) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
        fclose(fp);
        snprintf(out->message, sizeof out->message, "not a PNG file (bad signature)");
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out, tendon_png_error, tendon_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        snprintf(out->message, sizeof out->message, "out of memory");
        return -1;
    }
    png_bytep *volatile rows = NULL;
    unsigned char *volatile pixels = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(pixels);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        out->pixels = NULL;
        return -1;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    int gray16 = depth == 16 && color == PNG_COLOR_TYPE_GRAY && !png_get_valid(png, info, PNG_INFO_tRNS);
    // Palette → RGB, 1/2/4-bit gray → 8-bit by bit replication, tRNS → an alpha channel (Pillow's
    // "transparency" becomes alpha the same way before it composites).
    png_set_expand(png);
    if (depth == 16 && !gray16) png_set_strip_16(png);  // Pillow's ";16B" unpackers keep the high byte
    if (gray16) png_set_swap(png);                      // to native little-endian uint16
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    int ch = png_get_channels(png, info);
    size_t rowBytes = png_get_rowbytes(png, info);
    if (w <= 0 || h <= 0 || (size_t)w * (size_t)h > (size_t)1 << 28) {
        snprintf(out->message, sizeof out->message, "unsupported image size %dx%d", w, h);
        png_longjmp(png, 1);
    }
    pixels = (unsigned char *)malloc(rowBytes * (size_t)h);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)h);
    if (!pixels || !rows) { snprintf(out->message, sizeof out->message, "out of memory"); png_longjmp(png, 1); }
    for (int y = 0; y < h; y++) rows[y] = pixels + rowBytes * (size_t)y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    out->width = w;
    out->height = h;
    out->channels = ch;
    out->bitDepth = gray16 ? 16 : 8;
    out->pixels = pixels;
    return 0;
}
