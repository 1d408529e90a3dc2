/* fuzz_trainer_state.c: a checkpoint's trainer_state.json. A tiny valid
 * checkpoint (model, vocabulary, moments) is made once; each input replaces
 * its trainer_state.json, and the checkpoint is loaded and the state adopted
 * by a trainer, as resuming a run does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "model/checkpoint.h"
#include "model/trainer.h"

static char ckpt[300];
static const char chars[] = "0123456789+=";

/* Writes the tiny checkpoint into fuzz_dir()/ckpt. */
static void make_checkpoint(void) {
    ad_error err = {{0}};
    ad_model_config c = ad_model_default_config();
    c.n_layers = 1;
    c.n_heads = 1;
    c.d_model = 4;
    c.d_ff = 4;
    c.max_seq_len = 8;
    c.vocab_size = 3 + strlen(chars);
    ad_model *m = NULL;
    static ad_vocab v;
    ad_adamw opt = {0};
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", fuzz_dir());
    if (ad_model_create(&m, &c, &err) || ad_vocab_from_chars(&v, chars, &err) ||
        ad_adamw_init(&opt, m, &(ad_adamw_config){0.9f, 0.98f, 1e-8f, 0.0f, 1.0f}, &err) ||
        ad_checkpoint_save(ckpt, m, &v, &opt, "{\"optimizer_step\": 1}", &err))
        fuzz_fail("cannot make the checkpoint", err.msg);
    ad_model_free(m);
    ad_adamw_free(&opt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ckpt[0]) make_checkpoint();
    fuzz_write("ckpt/trainer_state.json", data, size);
    static ad_vocab v;
    ad_model *m = NULL;
    ad_adamw opt = {.cfg = {0.9f, 0.98f, 1e-8f, 0.0f, 1.0f}};
    char *json = NULL;
    ad_error err = {{0}};
    if (ad_checkpoint_load(ckpt, &m, &v, &opt, &json, &err) == AD_OK) {
        ad_trainer tr;
        ad_train_config tc = ad_train_default_config(10);
        if (ad_trainer_init(&tr, m, &tc, &err) == AD_OK) {
            if (ad_trainer_adopt_optimizer(&tr, &opt, &err) == AD_OK && json)
                (void)ad_trainer_state_parse(&tr, json, &err);
            ad_trainer_free(&tr);
        }
    }
    ad_model_free(m);
    ad_adamw_free(&opt);
    free(json);
    return 0;
}
