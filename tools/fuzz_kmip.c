/*-------------------------------------------------------------------------
 *
 * fuzz_kmip.c
 *	  libFuzzer harness of the KMIP TTLV reader (src/kmip.c).
 *
 * A KMIP server is trusted with the key, not with the parser: any
 * response must parse or be refused without a crash or a sanitizer
 * report.  What parses must encode back to the same bytes, every parent
 * must be a structure that comes before its children, and the response
 * lookups must stay inside the message.
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "kmip.h"

static KmipMessage m;
static uint8_t out[KMIP_MAX_MESSAGE];

int			LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Write the parsed items out again, closing structures as the parents say. */
static size_t
reencode(void)
{
	KmipWriter	w;
	int			open[KMIP_MAX_DEPTH];
	int			depth = 0;

	kmip_writer_init(&w, out, sizeof(out));
	for (int i = 0; i < m.n; i++)
	{
		const KmipItem *it = &m.items[i];

		while (depth > 0 && open[depth - 1] != it->parent)
		{
			kmip_end(&w);
			depth--;
		}
		if (it->type == KMIP_STRUCTURE)
		{
			kmip_begin(&w, it->tag);
			if (depth == KMIP_MAX_DEPTH)
				abort();
			open[depth++] = i;
		}
		else
			kmip_string(&w, it->tag, it->type, it->value, it->len);
	}
	while (depth-- > 0)
		kmip_end(&w);
	if (w.overflow)
		abort();
	return w.len;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	uint32_t	status,
				reason,
				value;
	int			message;
	int			payload;

	if (size >= KMIP_HEADER_LEN && kmip_message_length(data) != 0 &&
		kmip_message_length(data) != size && kmip_parse(data, size, &m))
		abort();				/* a message is exactly as long as it says */
	if (!kmip_parse(data, size, &m))
		return 0;
	for (int i = 0; i < m.n; i++)
		if (m.items[i].parent >= i ||
			(m.items[i].parent >= 0 && m.items[m.items[i].parent].type != KMIP_STRUCTURE) ||
			m.items[i].value < data || m.items[i].value + m.items[i].len > data + size)
			abort();
	if (reencode() != size || memcmp(out, data, size) != 0)
		abort();
	payload = kmip_response(&m, KMIP_OP_DECRYPT, &status, &reason, &message);
	if (payload >= m.n || message >= m.n)
		abort();
	if (payload >= 0)
		(void) kmip_get_enum(&m, kmip_find(&m, payload, KMIP_TAG_DATA), &value);
	return 0;
}
