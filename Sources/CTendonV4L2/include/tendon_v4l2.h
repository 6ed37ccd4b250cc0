#ifndef TENDON_V4L2_H
#define TENDON_V4L2_H
/* Video4Linux2 capture ioctls behind plain functions and POD structs: the v4l2 structs are unions and
   the request codes are macros, neither of which Swift imports usefully. Every function returns 0 on
   success or an errno value (EINTR is retried inside). Video capture (single-planar), mmap I/O only. */
#include <stdint.h>

typedef struct {
    char driver[16];
    char card[32];
    char bus_info[32];
    uint32_t version;
    uint32_t capabilities;   /* of the whole physical device */
    uint32_t device_caps;    /* of this node (valid when capabilities has V4L2_CAP_DEVICE_CAPS) */
    int is_capture;          /* this node does single-planar video capture */
    int has_streaming;       /* and streaming (mmap) I/O */
} tendon_v4l2_caps;

typedef struct {
    uint32_t fourcc;
    uint32_t flags;
    char description[32];
} tendon_v4l2_format_desc;

/* type: 1 discrete (width/height), 2 continuous, 3 stepwise (min/max/step). */
typedef struct {
    uint32_t type;
    uint32_t width, height;
    uint32_t max_width, max_height, step_width, step_height;
} tendon_v4l2_frame_size;

/* Discrete: numerator/denominator is the frame interval in seconds (1/30 = 30 fps); stepwise: min. */
typedef struct {
    uint32_t type;
    uint32_t numerator, denominator;
} tendon_v4l2_frame_interval;

typedef struct {
    uint32_t fourcc, width, height, bytes_per_line, size_image;
} tendon_v4l2_format;

typedef struct {
    uint32_t index, bytes_used, flags, sequence;
    uint64_t timestamp_ns;   /* v4l2_buffer.timestamp */
    int timestamp_monotonic; /* V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC */
} tendon_v4l2_buffer;

uint32_t tendon_v4l2_fourcc_mjpeg(void);
uint32_t tendon_v4l2_fourcc_yuyv(void);

int tendon_v4l2_querycap(int fd, tendon_v4l2_caps *out);
/* ENUM_FMT for index; EINVAL past the last one. */
int tendon_v4l2_enum_format(int fd, uint32_t index, tendon_v4l2_format_desc *out);
int tendon_v4l2_enum_frame_size(int fd, uint32_t fourcc, uint32_t index, tendon_v4l2_frame_size *out);
int tendon_v4l2_enum_frame_interval(int fd, uint32_t fourcc, uint32_t width, uint32_t height, uint32_t index,
                                    tendon_v4l2_frame_interval *out);
/* S_FMT; the driver may adjust: `inout` receives what it chose. */
int tendon_v4l2_set_format(int fd, tendon_v4l2_format *inout);
/* S_PARM time-per-frame; `inout` receives the driver's choice. */
int tendon_v4l2_set_frame_interval(int fd, tendon_v4l2_frame_interval *inout);
/* REQBUFS (mmap); *count receives how many the driver allocated. count 0 frees them. */
int tendon_v4l2_request_buffers(int fd, uint32_t *count);
int tendon_v4l2_query_buffer(int fd, uint32_t index, uint32_t *offset, uint32_t *length);
int tendon_v4l2_queue_buffer(int fd, uint32_t index);
int tendon_v4l2_dequeue_buffer(int fd, tendon_v4l2_buffer *out);
int tendon_v4l2_stream(int fd, int on);

#endif
