/*
 * sandbox_env.c - the environment the sandbox hands to its platform process (see
 * sandbox_internal.h): a small owned list of KEY=value strings.
 */
#include "app/sandbox_internal.h"

#include "core/crypto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sandbox_env_set(sandbox_env *env, const char *key, const char *fmt, ...)
{
    if (env->count >= SANDBOX_ENV_MAX)
        return F3_EINVAL;
    char value[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    size_t len = strlen(key) + 1 + strlen(value) + 1;
    char *var = malloc(len);
    if (!var)
        return F3_ENOMEM;
    snprintf(var, len, "%s=%s", key, value);
    crypto_wipe(value, sizeof value);
    env->vars[env->count++] = var;
    return 0;
}

void sandbox_env_free(sandbox_env *env)
{
    for (size_t i = 0; i < env->count; i++) {
        crypto_wipe(env->vars[i], strlen(env->vars[i]));
        free(env->vars[i]);
    }
    env->count = 0;
}
