/*
 * req_build.h - building a request body (a msgpack map) in the unit tests
 * of the request decoders: test_query_request, test_credentials_request.
 */
#ifndef VOX_TEST_REQ_BUILD_H
#define VOX_TEST_REQ_BUILD_H

#include <msgpack.h>
#include <string.h>

typedef struct req {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} req;

/* A map of nkeys entries follows. */
static inline void req_init(req *r, uint32_t nkeys)
{
	msgpack_sbuffer_init(&r->sb);
	msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
	msgpack_pack_map(&r->pk, nkeys);
}

/* A string: a key, or a value. */
static inline void req_key(req *r, const char *k)
{
	msgpack_pack_str(&r->pk, strlen(k));
	msgpack_pack_str_body(&r->pk, k, strlen(k));
}

#endif
