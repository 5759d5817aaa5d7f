/* ignis/cuda.h: CUDA streams and device synchronization.
 *
 * Every thread has, per device, a current stream: at first its own stream
 * (non-blocking, made on first use). All kernels and copies a thread issues
 * for a device go, in order, to that device's current stream.
 *
 * Memory rule. Device memory returns to the caching allocator as soon as its
 * tensor dies, while kernels that use it may still be queued; the allocator
 * hands a block out again only on the stream it was freed on (stream order
 * makes that safe) or once that stream is idle. So: use a tensor on one stream.
 * To use it on another stream, order the two first (ig_cuda_stream_wait, or
 * ig_cuda_synchronize), and keep the tensor alive until the other stream is
 * done with it.
 *
 * In a build without CUDA these calls fail with IG_ERR_NO_DEVICE. */
#ifndef IGNIS_CUDA_H
#define IGNIS_CUDA_H

#include "ignis/status.h"
#include "ignis/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_cuda_stream ig_cuda_stream;

/* A new non-blocking stream on CUDA device `device`; NULL and the last error
 * when it cannot be made. */
ig_cuda_stream *ig_cuda_stream_new(int device);
/* Waits for the stream's work, then destroys it. If it is this thread's
 * current stream, the thread's own stream becomes current again. A thread's
 * own stream (from ig_cuda_stream_current) is not to be freed. NULL is allowed. */
void ig_cuda_stream_free(ig_cuda_stream *s);
/* This thread's current stream on `device` (its own stream unless set). */
ig_cuda_stream *ig_cuda_stream_current(int device);
/* Makes s the current stream of this thread for s's device:
 *     ig_cuda_stream *prev = ig_cuda_stream_current(0);
 *     ig_cuda_stream_set_current(side); ...; ig_cuda_stream_set_current(prev); */
ig_status ig_cuda_stream_set_current(ig_cuda_stream *s);
/* Work enqueued on `waiter` from now on starts after all work enqueued on `on`
 * so far (an event; neither stream blocks the host). Same device. */
ig_status ig_cuda_stream_wait(ig_cuda_stream *waiter, ig_cuda_stream *on);
/* Blocks the host until the stream's work is done. */
ig_status ig_cuda_stream_synchronize(ig_cuda_stream *s);
/* The cudaStream_t, for libraries (NCCL, cuDNN). */
void *ig_cuda_stream_handle(const ig_cuda_stream *s);
/* Blocks the host until all work on the device (every stream) is done; IG_OK
 * at once for the CPU. */
ig_status ig_cuda_synchronize(ig_device dev);

#ifdef __cplusplus
}
#endif
#endif
