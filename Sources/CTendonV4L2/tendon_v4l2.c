#include "tendon_v4l2.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/videodev2.h>

static int xioctl(int fd, unsigned long request, void *arg) {
    int r;
    do { r = ioctl(fd, request, arg); } while (r == -1 && errno == EINTR);
    return r == -1 ? errno : 0;
}

uint32_t tendon_v4l2_fourcc_mjpeg(void) { return V4L2_PIX_FMT_MJPEG; }
uint32_t tendon_v4l2_fourcc_yuyv(void) { return V4L2_PIX_FMT_YUYV; }

static void copy_text(char *dst, size_t n, const unsigned char *src, size_t srcn) {
    size_t m = srcn < n - 1 ? srcn : n - 1;
    memcpy(dst, src, m);
    dst[m] = 0;
}

int tendon_v4l2_querycap(int fd, tendon_v4l2_caps *out) {
    struct v4l2_capability cap;
    memset(&cap, 0, sizeof cap);
    int r = xioctl(fd, VIDIOC_QUERYCAP, &cap);
    if (r) return r;
    memset(out, 0, sizeof *out);
    copy_text(out->driver, sizeof out->driver, cap.driver, sizeof cap.driver);
    copy_text(out->card, sizeof out->card, cap.card, sizeof cap.card);
    copy_text(out->bus_info, sizeof out->bus_info, cap.bus_info, sizeof cap.bus_info);
    out->version = cap.version;
    out->capabilities = cap.capabilities;
    out->device_caps = cap.device_caps;
    uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    out->is_capture = (caps & V4L2_CAP_VIDEO_CAPTURE) != 0;
    out->has_streaming = (caps & V4L2_CAP_STREAMING) != 0;
    return 0;
}

int tendon_v4l2_enum_format(int fd, uint32_t index, tendon_v4l2_format_desc *out) {
    struct v4l2_fmtdesc d;
    memset(&d, 0, sizeof d);
    d.index = index;
    d.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    int r = xioctl(fd, VIDIOC_ENUM_FMT, &d);
    if (r) return r;
    out->fourcc = d.pixelformat;
    out->flags = d.flags;
    copy_text(out->description, sizeof out->description, d.description, sizeof d.description);
    return 0;
}

int tendon_v4l2_enum_frame_size(int fd, uint32_t fourcc, uint32_t index, tendon_v4l2_frame_size *out) {
    struct v4l2_frmsizeenum s;
    memset(&s, 0, sizeof s);
    s.index = index;
    s.pixel_format = fourcc;
    int r = xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &s);
    if (r) return r;
    memset(out, 0, sizeof *out);
    out->type = s.type;
    if (s.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
        out->width = s.discrete.width;
        out->height = s.discrete.height;
    } else {
        out->width = s.stepwise.min_width;
        out->height = s.stepwise.min_height;
        out->max_width = s.stepwise.max_width;
        out->max_height = s.stepwise.max_height;
        out->step_width = s.stepwise.step_width;
        out->step_height = s.stepwise.step_height;
    }
    return 0;
}

int tendon_v4l2_enum_frame_interval(int fd, uint32_t fourcc, uint32_t width, uint32_t height, uint32_t index,
                                    tendon_v4l2_frame_interval *out) {
    struct v4l2_frmivalenum f;
    memset(&f, 0, sizeof f);
    f.index = index;
    f.pixel_format = fourcc;
    f.width = width;
    f.height = height;
    int r = xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &f);
    if (r) return r;
    out->type = f.type;
    if (f.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
        out->numerator = f.discrete.numerator;
        out->denominator = f.discrete.denominator;
    } else {
        out->numerator = f.stepwise.min.numerator;
        out->denominator = f.stepwise.min.denominator;
    }
    return 0;
}

int tendon_v4l2_set_format(int fd, tendon_v4l2_format *inout) {
    struct v4l2_format f;
    memset(&f, 0, sizeof f);
    f.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    f.fmt.pix.width = inout->width;
    f.fmt.pix.height = inout->height;
    f.fmt.pix.pixelformat = inout->fourcc;
    f.fmt.pix.field = V4L2_FIELD_NONE;
    int r = xioctl(fd, VIDIOC_S_FMT, &f);
    if (r) return r;
    inout->fourcc = f.fmt.pix.pixelformat;
    inout->width = f.fmt.pix.width;
    inout->height = f.fmt.pix.height;
    inout->bytes_per_line = f.fmt.pix.bytesperline;
    inout->size_image = f.fmt.pix.sizeimage;
    return 0;
}

int tendon_v4l2_set_frame_interval(int fd, tendon_v4l2_frame_interval *inout) {
    struct v4l2_streamparm p;
    memset(&p, 0, sizeof p);
    p.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    p.parm.capture.timeperframe.numerator = inout->numerator;
    p.parm.capture.timeperframe.denominator = inout->denominator;
    int r = xioctl(fd, VIDIOC_S_PARM, &p);
    if (r) return r;
    inout->numerator = p.parm.capture.timeperframe.numerator;
    inout->denominator = p.parm.capture.timeperframe.denominator;
    return 0;
}

int tendon_v4l2_request_buffers(int fd, uint32_t *count) {
    struct v4l2_requestbuffers q;
    memset(&q, 0, sizeof q);
    q.count = *count;
    q.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    q.memory = V4L2_MEMORY_MMAP;
    int r = xioctl(fd, VIDIOC_REQBUFS, &q);
    if (r) return r;
    *count = q.count;
    return 0;
}

int tendon_v4l2_query_buffer(int fd, uint32_t index, uint32_t *offset, uint32_t *length) {
    struct v4l2_buffer b;
    memset(&b, 0, sizeof b);
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    b.index = index;
    int r = xioctl(fd, VIDIOC_QUERYBUF, &b);
    if (r) return r;
    *offset = b.m.offset;
    *length = b.length;
    return 0;
}

int tendon_v4l2_queue_buffer(int fd, uint32_t index) {
    struct v4l2_buffer b;
    memset(&b, 0, sizeof b);
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    b.index = index;
    return xioctl(fd, VIDIOC_QBUF, &b);
}

int tendon_v4l2_dequeue_buffer(int fd, tendon_v4l2_buffer *out) {
    struct v4l2_buffer b;
    memset(&b, 0, sizeof b);
    b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    b.memory = V4L2_MEMORY_MMAP;
    int r = xioctl(fd, VIDIOC_DQBUF, &b);
    if (r) return r;
    out->index = b.index;
    out->bytes_used = b.bytesused;
    out->flags = b.flags;
    out->sequence = b.sequence;
    out->timestamp_ns = (uint64_t)b.timestamp.tv_sec * 1000000000ull + (uint64_t)b.timestamp.tv_usec * 1000ull;
    out->timestamp_monotonic = (b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) == V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
    return 0;
}

int tendon_v4l2_stream(int fd, int on) {
    enum v4l2_buf_type t = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    return xioctl(fd, on ? VIDIOC_STREAMON : VIDIOC_STREAMOFF, &t);
}
