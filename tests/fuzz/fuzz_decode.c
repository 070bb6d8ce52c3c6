/*
 * libFuzzer target for one decoder (VOX_FUZZ_KIND picks the message kind at
 * build time, so each decoder is its own target). Besides "no crash, no
 * out-of-bounds read" (ASan/UBSan), it checks two properties on every
 * input the decoder accepts: the value re-encodes, and the re-encoding
 * decodes to the same value.
 */
#include "core/common.h"

#include "vox/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vox_event ev, back;
	vox_decode_error err;
	if (vox_event_decode(&ev, (vox_event_kind)VOX_FUZZ_KIND, data, size,
			     &err) != VOX_OK) {
		if (err.code == NULL || err.message[0] == '\0')
			abort();
		return 0;
	}
	unsigned char *buf = NULL;
	size_t len = 0;
	if (vox_event_encode(&ev, &buf, &len, &err) != VOX_OK)
		abort();
	if (vox_event_decode(&back, ev.kind, buf, len, &err) != VOX_OK)
		abort();
	char *a = vox_event_to_json(&ev);
	char *b = vox_event_to_json(&back);
	if (strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
	free(buf);
	return 0;
}
