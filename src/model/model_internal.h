/* model_internal.h: declarations shared by the files that implement model.h.
 * Not a public header: nothing outside src/model includes it. */
#ifndef AD_MODEL_MODEL_INTERNAL_H
#define AD_MODEL_MODEL_INTERNAL_H

#include "model/model.h"

/* Frees the forward/backward activation buffers (model_forward.c); NULL is fine. */
void ad_activations_free(ad_activations *a);

#endif
