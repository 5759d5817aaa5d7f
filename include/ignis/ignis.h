/* ignis/ignis.h: everything a training program needs, in one include. */
#ifndef IGNIS_IGNIS_H
#define IGNIS_IGNIS_H
#include "ignis/status.h"
#include "ignis/tensor.h"
#include "ignis/autograd.h"
#include "ignis/ops.h"
#include "ignis/cuda.h"
#include "ignis/nn.h"
#include "ignis/optim.h"
#include "ignis/data.h"
#include "ignis/ckpt.h"
#endif
