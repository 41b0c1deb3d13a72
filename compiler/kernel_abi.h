/* The kernel ABI shared by generated code (JIT and AOT objects) and its callers. Plain C so that an
 * AOT object links with nothing but this header. Every kernel of a plan is
 *   void NAME(const flashjit_args* args, int64_t tile_begin, int64_t tile_end);
 *   int64_t NAME_tiles(int64_t batch);
 * and the caller splits [0, NAME_tiles(batch)) over its threads in any way it likes; the kernels of
 * a plan run in plan order, each finishing before the next starts. */
#ifndef FLASHJIT_KERNEL_ABI_H
#define FLASHJIT_KERNEL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct flashjit_args {
  const void* x;  /* layer input, [B,S,C] or [B,C,H,W] */
  const void* wq; /* C x C, y = x . W */
  const void* wk;
  const void* wv;
  const void* wo;
  const void* bo; /* C */
  void* q;        /* workspaces, each sized by the plan (KernelPlan::workspace_elements) */
  void* k;
  void* v;
  void* o;
  void* y;        /* layer output, same shape as x */
  int64_t batch;
  /* Appended for training (issue #8); a forward-only caller leaves them NULL. */
  void* lse;         /* [B][H][N] natural-log log-sum-exp of each query row's scaled scores,
                        written by the attention kernel when non-NULL, read by the backward */
  const void* dy;    /* backward: gradient of y, same shape as x */
  void* dx;          /* backward: gradient of x, same shape as x */
  void* dattn;       /* backward workspaces, each sized by the plan (backward_workspace_elements): */
  void* dqkv;        /*   dattn [B][H][N][C/H] = dy.Wo^T, head-major; dqkv [B][N][3C] gradients of q, k, v; */
  void* delta;       /*   delta: the attention backward's scratch (row sums of dattn * o per key
                            part, dq partial sums, q copies); wt [4C][C] = Wq^T, Wk^T, Wv^T, Wo^T */
  void* wt;
  void* dwq;         /* backward: parameter gradients, overwritten: C x C each, dbo C */
  void* dwk;
  void* dwv;
  void* dwo;
  void* dbo;
} flashjit_args;

typedef void (*flashjit_kernel_fn)(const flashjit_args*, int64_t, int64_t);
typedef int64_t (*flashjit_tiles_fn)(int64_t);

#ifdef __cplusplus
}
#endif

#endif
