/*-------------------------------------------------------------------------
 *
 * payload.c
 *	  Sealed payloads: the canonical row, the physical tuple that carries it,
 *	  and opening it again.
 *
 * A physical ledger tuple is a valid heap tuple of the table's descriptor
 * in which only the plaintext set P holds values; every other column is
 * NULL.  After the attribute area, inside t_len, come the payload and a
 * four-byte trailer with the payload's length:
 *
 *	  [heap header + null bitmap][attributes][payload][uint32 length]
 *
 * Payload, all integers big-endian (docs/internals.md has the full layout):
 *
 *	  0  format (1)      1  flags (1)       2  natts (2)      4  key id (4)
 *	  8  document id (8) 16 version (4)     20 nonce (12)
 *	  32 present-column bitmap, (natts + 7) / 8 bytes
 *	  .. AES-256-GCM ciphertext and tag, unless flag EXTERNAL is set, in
 *	     which case the sealed revision in ledger.journal holds them.
 *
 * The plaintext is salt (16) || canonical row, the row as one tuple of
 * COPY BINARY: int16 field count, then per column int32 length (-1 for
 * NULL) and the type's send representation (its text output, for the rare
 * type without binary I/O).  Dropped columns are skipped;
 * the bitmap says which attribute numbers the fields belong to.
 *
 * The GCM AAD binds the table id and the payload header (flags excepted),
 * so a payload moved to another table, or an edited header, fails to open.
 * The physical attributes are checked against the opened row: every
 * column of the plaintext set must hold exactly the row's value, and
 * every other column must be NULL.  So an edited plaintext column, or a
 * payload moved to a row with other plaintext values, fails too, while
 * the payload stays a function of the revision alone: the table and the
 * journal hold the same bytes, and re-sealing a table for a larger
 * plaintext set only rebuilds attribute areas (docs/internals.md).
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"
#include "layout.h"

#include "access/detoast.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#define FORMAT_V1			1
#define FLAG_EXTERNAL		0x01

#define HDR_FORMAT			0
#define HDR_FLAGS			1
#define HDR_NATTS			2
#define HDR_KEY_ID			4
#define HDR_DOC_ID			8
#define HDR_VERSION			16
#define HDR_NONCE			20
#define HDR_FIXED			32
#define HDR_LEN(natts)		(HDR_FIXED + ((natts) + 7) / 8)
#define TRAILER_LEN			4

StaticAssertDecl(HDR_LEN(MaxTupleAttributeNumber) == LEDGER_HEADER_MAX,
				 "LEDGER_HEADER_MAX must be the longest payload header");

#define ROW_AAD_TAG			"ledger.row.v1"

static MemoryContext scratch = NULL;

static MemoryContext
scratch_context(void)
{
	if (scratch == NULL)
		scratch = AllocSetContextCreate(TopMemoryContext, "ledger payload",
										ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(scratch);
	return scratch;
}

/* The row being opened, so that every corruption report can name it. */
static ItemPointerData current_tid;

static void
corrupted(Relation rel, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("ledger row in table \"%s\" is corrupted",
					RelationGetRelationName(rel)),
			 errdetail_internal("%s  The row is at (%u,%u).", detail,
								ItemPointerGetBlockNumberNoCheck(&current_tid),
								ItemPointerGetOffsetNumberNoCheck(&current_tid)),
			 errhint("The row no longer matches what the ledger sealed; restore it from a backup or from its revision in ledger.journal.")));
}

/*
 * Send and receive functions of text-like types convert to and from the
 * client encoding.  The canonical row must not depend on a session
 * setting, so the conversion is switched off around them: canonical text
 * is in the database encoding.
 */
static int
enter_database_encoding(void)
{
	int			client = pg_get_client_encoding();

	if (client == GetDatabaseEncoding())
		return -1;
	SetClientEncoding(GetDatabaseEncoding());
	return client;
}

static void
leave_database_encoding(int saved)
{
	if (saved >= 0)
		SetClientEncoding(saved);
}

/* Encode values as one COPY BINARY tuple; sets the present bitmap. */
static void
encode_row(LedgerTable *t, Datum *values, bool *isnull, StringInfo buf,
		   uint8 *bitmap)
{
	int			nfields = 0;
	volatile int saved = enter_database_encoding();

	for (int i = 0; i < t->natts; i++)
		nfields += t->columns[i].dropped ? 0 : 1;
	pq_sendint16(buf, nfields);
	PG_TRY();
	{
		for (int i = 0; i < t->natts; i++)
		{
			LedgerColumn *col = &t->columns[i];
			bytea	   *b;

			if (col->dropped)
				continue;
			bitmap[i / 8] |= 1 << (i % 8);
			if (isnull[i])
			{
				pq_sendint32(buf, -1);
				continue;
			}
			if (col->text_io)
			{
				char	   *s = OutputFunctionCall(&col->send, values[i]);

				pq_sendint32(buf, strlen(s));
				appendBinaryStringInfo(buf, s, strlen(s));
				continue;
			}
			b = SendFunctionCall(&col->send, values[i]);
			pq_sendint32(buf, VARSIZE(b) - VARHDRSZ);
			appendBinaryStringInfo(buf, VARDATA(b), VARSIZE(b) - VARHDRSZ);
		}
	}
	PG_FINALLY();
	{
		leave_database_encoding(saved);
	}
	PG_END_TRY();
}

/* Decode a canonical row; attributes it does not hold keep their input. */
static void
decode_row(Relation rel, LedgerTable *t, const uint8 *hdr, const char *data,
		   int len, Datum *values, bool *isnull)
{
	StringInfoData buf;
	StringInfoData field;
	int			natts_w = get_be16(hdr + HDR_NATTS);
	const uint8 *bitmap = hdr + HDR_FIXED;
	volatile int nfields;
	volatile int saved;

	buf.data = (char *) data;
	buf.len = len;
	buf.maxlen = len;
	buf.cursor = 0;
	if (len < 2)
		corrupted(rel, "The canonical row is truncated.");
	nfields = pq_getmsgint(&buf, 2);
	initStringInfo(&field);
	saved = enter_database_encoding();
	PG_TRY();
	{
		for (int i = 0; i < natts_w; i++)
		{
			int32		flen;

			if ((bitmap[i / 8] & (1 << (i % 8))) == 0)
				continue;
			if (nfields-- <= 0 || buf.len - buf.cursor < 4)
				corrupted(rel, "The canonical row has too few fields.");
			flen = (int32) pq_getmsgint(&buf, 4);
			if (flen < -1 || flen > buf.len - buf.cursor)
				corrupted(rel, "A field of the canonical row has a bad length.");
			/* A column dropped since the row was written is skipped. */
			if (i >= t->natts || t->columns[i].dropped)
			{
				buf.cursor += Max(flen, 0);
				continue;
			}
			isnull[i] = (flen < 0);
			if (flen < 0)
				continue;
			/* recv functions want a NUL after the data, as COPY gives them */
			resetStringInfo(&field);
			appendBinaryStringInfo(&field, buf.data + buf.cursor, flen);
			buf.cursor += flen;
			if (t->columns[i].text_io)
			{
				values[i] = InputFunctionCall(&t->columns[i].recv, field.data,
											  t->columns[i].typioparam,
											  t->columns[i].typmod);
				continue;
			}
			values[i] = ReceiveFunctionCall(&t->columns[i].recv, &field,
											t->columns[i].typioparam,
											t->columns[i].typmod);
			if (field.cursor != field.len)
				corrupted(rel, "A field of the canonical row has trailing bytes.");
		}
	}
	PG_FINALLY();
	{
		leave_database_encoding(saved);
	}
	PG_END_TRY();
	if (nfields != 0 || buf.cursor != buf.len)
		corrupted(rel, "The canonical row has extra fields.");
}

static int
row_aad(uint8 *aad, int64 table_id, const uint8 *hdr, int hdrlen)
{
	int			n = 0;

	memcpy(aad, ROW_AAD_TAG, sizeof(ROW_AAD_TAG));
	n += sizeof(ROW_AAD_TAG);
	put_be64(aad + n, (uint64) table_id);
	n += 8;
	memcpy(aad + n, hdr, hdrlen);
	aad[n + HDR_FLAGS] = 0;		/* inline or external seal alike */
	return n + hdrlen;
}

/* Fills rev->revision_hash from the other fields; see docs/verification.md. */
void
ledger_revision_hash(LedgerRevision *rev)
{
	if (!layout_revision_hash(rev->table_id, rev->doc_id, rev->version, rev->op,
							  rev->data_hash, rev->revision_hash))
		elog(ERROR, "SHA-256 failed");
}

/*
 * The plaintext values of a row: P columns keep a flat, detoasted copy of
 * their value, so heap's toaster never needs to touch the tuple; all other
 * columns are NULL.
 */
static void
plain_values(LedgerTable *t, const Bitmapset *plainset, int natts_w,
			 Datum *values, bool *isnull, Datum *pvalues, bool *pnulls)
{
	for (int i = 0; i < t->natts; i++)
	{
		pnulls[i] = true;
		if (t->columns[i].dropped || isnull[i] ||
			(i < natts_w && !bms_is_member(i + 1, plainset)))
			continue;
		pnulls[i] = false;
		pvalues[i] = values[i];
		if (t->columns[i].typlen == -1)
			pvalues[i] = PointerGetDatum(pg_detoast_datum_packed((struct varlena *) DatumGetPointer(pvalues[i])));
	}
}

/*
 * Index builds grow P before any index can be seen; see index_build.c.
 * The answer is kept in the table's cache entry, which every index change
 * and every change of P invalidates.
 */
static void
require_plain_indexes(Relation rel, LedgerTable *t)
{
	if (t->indexes_plain < 0)
		t->indexes_plain = bms_is_subset(ledger_index_attnums(rel), t->plainset);
	if (!t->indexes_plain)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("an index of ledger table \"%s\" references columns outside its plaintext set",
						RelationGetRelationName(rel)),
				 errhint("REINDEX the table's indexes.")));
}

/*
 * Build the physical tuple: attributes, then payload and trailer.  The
 * attribute area must stay within the table's toast target, so that the
 * toaster returns the tuple untouched; heap_fill_tuple lays it out.
 */
static HeapTuple
form_physical(Relation rel, Datum *pvalues, bool *pnulls,
			  const uint8 *payload, int paylen)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		hasnull = false;
	int			hoff;
	Size		datalen;
	Size		len;
	HeapTuple	tup;
	HeapTupleHeader td;
	int			limit;

	for (int i = 0; i < desc->natts; i++)
		hasnull |= pnulls[i];
	hoff = SizeofHeapTupleHeader;
	if (hasnull)
		hoff += BITMAPLEN(desc->natts);
	hoff = MAXALIGN(hoff);
	datalen = heap_compute_data_size(desc, pvalues, pnulls);
	limit = RelationGetToastTupleTarget(rel, TOAST_TUPLE_TARGET) - hoff;
	if (datalen > limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("plaintext columns of ledger table \"%s\" need %zu bytes, more than the %d bytes allowed",
						RelationGetRelationName(rel), datalen, limit),
				 errdetail("Indexed columns are kept in the clear in the row itself and must not need TOAST."),
				 errhint("Index shorter values, or raise the table's toast_tuple_target.")));
	len = hoff + datalen + paylen + TRAILER_LEN;
	if (len > MaxHeapTupleSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("ledger row of table \"%s\" is too big", RelationGetRelationName(rel)),
				 errhint("Lower the table's toast_tuple_target.")));
	tup = palloc0(HEAPTUPLESIZE + len);
	tup->t_data = td = (HeapTupleHeader) ((char *) tup + HEAPTUPLESIZE);
	tup->t_len = len;
	ItemPointerSetInvalid(&tup->t_self);
	tup->t_tableOid = RelationGetRelid(rel);
	HeapTupleHeaderSetDatumLength(td, len);
	HeapTupleHeaderSetTypeId(td, desc->tdtypeid);
	HeapTupleHeaderSetTypMod(td, desc->tdtypmod);
	HeapTupleHeaderSetNatts(td, desc->natts);
	td->t_hoff = hoff;
	heap_fill_tuple(desc, pvalues, pnulls, (char *) td + hoff, datalen,
					&td->t_infomask, hasnull ? td->t_bits : NULL);
	memcpy((char *) td + hoff + datalen, payload, paylen);
	put_be32((uint8 *) td + len - TRAILER_LEN, (uint32) paylen);
	return tup;
}

/*
 * Sealing's own work (send functions, the canonical row) happens in a
 * context emptied at the next seal: a bulk load would otherwise grow and
 * return memory, and fault it back in, for every batch.  Only the tuple
 * and the revision's payload go to the caller's context.
 */
static MemoryContext seal_cxt = NULL;

HeapTuple
ledger_seal(Relation rel, TupleTableSlot *slot, int64 doc_id, int32 version,
			char op, LedgerRevision *rev)
{
	LedgerTable *t = ledger_table(rel);
	MemoryContext caller = CurrentMemoryContext;
	int			natts = t->natts;
	int			hdrlen = HDR_LEN(natts);
	Datum	   *pvalues;
	bool	   *pnulls;
	StringInfoData plain;
	uint8		random[LEDGER_SALT_LEN + LEDGER_NONCE_LEN];
	uint8	   *hdr;
	uint8	   *sealed;
	uint8	   *aad;
	int			aadlen;
	int			sealedlen;
	HeapTuple	tup;

	if (seal_cxt == NULL)
		seal_cxt = AllocSetContextCreate(TopMemoryContext, "ledger seal",
										 0, 8 * 1024, 64 * 1024);
	MemoryContextReset(seal_cxt);
	MemoryContextSwitchTo(seal_cxt);
	pvalues = palloc(sizeof(Datum) * Max(natts, 1));
	pnulls = palloc(sizeof(bool) * Max(natts, 1));
	slot_getallattrs(slot);
	require_plain_indexes(rel, t);
	plain_values(t, t->plainset, natts, slot->tts_values, slot->tts_isnull,
				 pvalues, pnulls);

	/* The salt leads the plaintext, inside the ciphertext. */
	initStringInfo(&plain);
	enlargeStringInfo(&plain, LEDGER_SALT_LEN);
	hdr = palloc0(hdrlen);
	ledger_random_bytes(random, sizeof(random));
	memcpy(plain.data, random, LEDGER_SALT_LEN);
	memcpy(hdr + HDR_NONCE, random + LEDGER_SALT_LEN, LEDGER_NONCE_LEN);
	ledger_wipe(random, sizeof(random));
	plain.len = LEDGER_SALT_LEN;

	/* The sealed revision: header, then ciphertext and tag. */
	encode_row(t, slot->tts_values, slot->tts_isnull, &plain, hdr + HDR_FIXED);
	hdr[HDR_FORMAT] = FORMAT_V1;
	put_be16(hdr + HDR_NATTS, (uint16) natts);
	put_be32(hdr + HDR_KEY_ID, (uint32) t->data_key_id);
	put_be64(hdr + HDR_DOC_ID, (uint64) doc_id);
	put_be32(hdr + HDR_VERSION, (uint32) version);

	rev->table_id = t->table_id;
	rev->doc_id = doc_id;
	rev->version = version;
	rev->op = op;
	rev->key_id = t->data_key_id;
	ledger_sha256((uint8 *) plain.data, plain.len, rev->data_hash);
	ledger_revision_hash(rev);

	aad = palloc(sizeof(ROW_AAD_TAG) + 8 + hdrlen);
	aadlen = row_aad(aad, t->table_id, hdr, hdrlen);
	sealedlen = hdrlen + plain.len + LEDGER_TAG_LEN;
	rev->payload = MemoryContextAlloc(caller, VARHDRSZ + sealedlen);
	SET_VARSIZE(rev->payload, VARHDRSZ + sealedlen);
	sealed = (uint8 *) VARDATA(rev->payload);
	memcpy(sealed, hdr, hdrlen);
	ledger_cipher_seal(ledger_data_cipher(t->data_key_id), hdr + HDR_NONCE,
					   aad, aadlen, (uint8 *) plain.data, plain.len,
					   sealed + hdrlen);
	ledger_wipe(plain.data, plain.len);

	/* Rows too big to keep inline keep only the header; see docs. */
	MemoryContextSwitchTo(caller);
	if (sealedlen + hdrlen + TRAILER_LEN > TOAST_TUPLE_THRESHOLD)
	{
		hdr[HDR_FLAGS] = FLAG_EXTERNAL;
		tup = form_physical(rel, pvalues, pnulls, hdr, hdrlen);
	}
	else
		tup = form_physical(rel, pvalues, pnulls, sealed, sealedlen);
	return tup;
}

/* Locate the payload of a physical tuple and check its framing. */
static const uint8 *
find_payload(Relation rel, HeapTuple phys, int *paylen)
{
	HeapTupleHeader td = phys->t_data;
	uint32		len;
	const uint8 *p;

	current_tid = phys->t_self;
	if (phys->t_len < td->t_hoff + TRAILER_LEN + HDR_FIXED)
		corrupted(rel, "The tuple has no sealed payload.");
	len = get_be32((uint8 *) td + phys->t_len - TRAILER_LEN);
	if (len < HDR_FIXED || len > phys->t_len - TRAILER_LEN - td->t_hoff)
		corrupted(rel, "The sealed payload has a bad length.");
	p = (uint8 *) td + phys->t_len - TRAILER_LEN - len;
	if (p[HDR_FORMAT] != FORMAT_V1 ||
		(p[HDR_FLAGS] & ~FLAG_EXTERNAL) != 0 ||
		len < HDR_LEN(get_be16(p + HDR_NATTS)))
		corrupted(rel, "The sealed payload has an unknown format.");
	*paylen = len;
	return p;
}

static void
parse_header(const uint8 *p, LedgerHeader *hdr)
{
	hdr->doc_id = (int64) get_be64(p + HDR_DOC_ID);
	hdr->version = (int32) get_be32(p + HDR_VERSION);
	hdr->key_id = (int32) get_be32(p + HDR_KEY_ID);
	hdr->external = (p[HDR_FLAGS] & FLAG_EXTERNAL) != 0;
}

void
ledger_read_header(Relation rel, HeapTuple phys, LedgerHeader *hdr)
{
	int			len;

	parse_header(find_payload(rel, phys, &len), hdr);
}

typedef struct HeaderMatch
{
	const uint8 *hdr;
	int			hdrlen;
} HeaderMatch;

/* A journal payload belongs to a row if all but the flags byte agree. */
static bool
header_matches(bytea *payload, void *arg)
{
	HeaderMatch *m = arg;
	const uint8 *p = (const uint8 *) VARDATA_ANY(payload);

	return VARSIZE_ANY_EXHDR(payload) >= m->hdrlen + LEDGER_TAG_LEN &&
		memcmp(p, m->hdr, HDR_FLAGS) == 0 &&
		memcmp(p + HDR_FLAGS + 1, m->hdr + HDR_FLAGS + 1,
			   m->hdrlen - HDR_FLAGS - 1) == 0;
}

/*
 * The sealed bytes of a row that keeps only its header: its revision in
 * the journal, which must carry the very same header.
 */
static const uint8 *
external_payload(Relation rel, LedgerTable *t, const uint8 *hdr, int hdrlen,
				 int *len)
{
	LedgerHeader h;
	HeaderMatch m = {hdr, hdrlen};
	bytea	   *b;

	parse_header(hdr, &h);
	b = ledger_journal_payload(t->table_id, h.doc_id, h.version,
							   header_matches, &m);
	if (b == NULL)
		corrupted(rel, psprintf("The sealed revision of document %lld version %d is missing from ledger.journal.",
								(long long) h.doc_id, h.version));
	*len = VARSIZE_ANY_EXHDR(b);
	return (const uint8 *) VARDATA_ANY(b);
}

/*
 * Decrypt a journal payload that must name the given revision.  Returns a
 * sentence saying what is wrong, or NULL with the plaintext (salt and
 * canonical row) in *plain, to be wiped by the caller.
 */
static const char *
open_journal_payload(int64 table_id, int64 doc_id, int32 version,
					 bytea *payload, uint8 **plain, int *plainlen)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(payload);
	int			len = VARSIZE_ANY_EXHDR(payload);
	LedgerHeader hdr;
	int			hdrlen;
	int			aadlen;
	uint8	   *aad;

	if (len < HDR_FIXED || p[HDR_FORMAT] != FORMAT_V1 ||
		(p[HDR_FLAGS] & ~FLAG_EXTERNAL) != 0)
		return "The sealed payload has an unknown format.";
	hdrlen = HDR_LEN(get_be16(p + HDR_NATTS));
	if (len < hdrlen + LEDGER_SALT_LEN + LEDGER_TAG_LEN)
		return "The sealed payload is truncated.";
	parse_header(p, &hdr);
	if (hdr.doc_id != doc_id || hdr.version != version)
		return "The sealed payload belongs to another revision.";
	aad = palloc(sizeof(ROW_AAD_TAG) + 8 + hdrlen);
	aadlen = row_aad(aad, table_id, p, hdrlen);
	*plain = palloc(len - hdrlen);
	*plainlen = len - hdrlen - LEDGER_TAG_LEN;
	if (!ledger_cipher_open(ledger_data_cipher(hdr.key_id), p + HDR_NONCE,
							aad, aadlen, p + hdrlen, len - hdrlen, *plain))
		return "The sealed payload fails authentication.";
	pfree(aad);
	return NULL;
}

/*
 * The data hash of a journal revision, recomputed by opening its payload:
 * SHA-256 of the plaintext, salt included.  Returns a sentence saying what
 * is wrong, or NULL if the payload opens and names this revision.
 */
const char *
ledger_revision_data_hash(int64 table_id, int64 doc_id, int32 version,
						  bytea *payload, uint8 *hash)
{
	uint8	   *plain;
	int			len;
	const char *problem;

	problem = open_journal_payload(table_id, doc_id, version, payload,
								   &plain, &len);
	if (problem != NULL)
		return problem;
	ledger_sha256(plain, len, hash);
	ledger_wipe(plain, len);
	pfree(plain);
	return NULL;
}

/*
 * A journal revision of a table as a composite datum of the table's row
 * type (rowdesc is the type cache's descriptor of it).  Columns added
 * after it was sealed read as their default (the missing value), as they
 * do in the table.
 */
Datum
ledger_open_revision(Relation rel, TupleDesc rowdesc, int64 doc_id,
					 int32 version, bytea *payload)
{
	LedgerTable *t = ledger_table(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *isnull = palloc(sizeof(bool) * Max(desc->natts, 1));
	const uint8 *hdr = (const uint8 *) VARDATA_ANY(payload);
	uint8	   *plain;
	int			len;
	int			natts_w;
	const char *problem;
	HeapTuple	tup;

	problem = open_journal_payload(t->table_id, doc_id, version, payload,
								   &plain, &len);
	ItemPointerSetInvalid(&current_tid);
	if (problem != NULL)
		corrupted(rel, psprintf("%s  Document %lld version %d in ledger.journal.",
								problem, (long long) doc_id, version));
	natts_w = get_be16(hdr + HDR_NATTS);
	for (int i = 0; i < desc->natts; i++)
	{
		isnull[i] = true;
		values[i] = (Datum) 0;
		if (i >= natts_w && !TupleDescAttr(desc, i)->attisdropped)
			values[i] = getmissingattr(desc, i + 1, &isnull[i]);
	}
	decode_row(rel, t, hdr, (char *) plain + LEDGER_SALT_LEN,
			   len - LEDGER_SALT_LEN, values, isnull);
	ledger_wipe(plain, len);
	tup = heap_form_tuple(rowdesc, values, isnull);
	return heap_copy_tuple_as_datum(tup, rowdesc);
}

/*
 * The physical attributes of the columns the payload holds must be what
 * sealing this row would write: the row's value in every plaintext
 * column, NULL elsewhere.  Columns added after the row was sealed are not
 * in its payload; their value (the column's default) is the physical one.
 */
static void
check_plain_values(Relation rel, LedgerTable *t, int natts_w,
				   Datum *pvalues, bool *pnulls, Datum *values, bool *isnull,
				   int64 doc_id)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < natts_w; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		plain = bms_is_member(i + 1, t->plainset);

		if (att->attisdropped)
			continue;
		if (plain ? (pnulls[i] != isnull[i] ||
					 (!pnulls[i] && !datum_image_eq(pvalues[i], values[i],
													att->attbyval, att->attlen)))
			: !pnulls[i])
			corrupted(rel, psprintf("Column \"%s\" of document %lld in the row does not match its sealed value.",
									NameStr(att->attname), (long long) doc_id));
	}
}

/*
 * A row's payload and header, with the attribute count checked against
 * the tuple's and the table's.
 */
static const uint8 *
row_frame(Relation rel, HeapTuple phys, int *paylen, LedgerHeader *hdr,
		  int *natts_w)
{
	const uint8 *payload = find_payload(rel, phys, paylen);
	int			natts_phys = HeapTupleHeaderGetNatts(phys->t_data);

	parse_header(payload, hdr);
	*natts_w = get_be16(payload + HDR_NATTS);
	if (*natts_w > natts_phys || natts_phys > RelationGetDescr(rel)->natts)
		corrupted(rel, "The sealed payload does not match the tuple's attribute count.");
	return payload;
}

/*
 * Decrypt a row's sealed bytes (its own, or its journal revision's) under
 * the row's header; the plaintext, salt first, is for the caller to wipe.
 */
static uint8 *
unseal_row(Relation rel, LedgerTable *t, const uint8 *payload, int hdrlen,
		   const LedgerHeader *hdr, const uint8 *sealed, int sealedlen)
{
	uint8	   *aad = palloc(sizeof(ROW_AAD_TAG) + 8 + hdrlen);
	int			aadlen = row_aad(aad, t->table_id, payload, hdrlen);
	uint8	   *plain;

	if (sealedlen < hdrlen + LEDGER_TAG_LEN + LEDGER_SALT_LEN)
		corrupted(rel, "The sealed payload is truncated.");
	plain = palloc(sealedlen - hdrlen);
	if (!ledger_cipher_open(ledger_data_cipher(hdr->key_id), payload + HDR_NONCE,
							aad, aadlen, sealed + hdrlen, sealedlen - hdrlen,
							plain))
		corrupted(rel, psprintf("Document %lld version %d fails authentication.",
								(long long) hdr->doc_id, hdr->version));
	pfree(aad);
	return plain;
}

void
ledger_open(Relation rel, HeapTuple phys, TupleTableSlot *dst)
{
	LedgerTable *t = ledger_table(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(scratch_context());
	Datum	   *pvalues = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *pnulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *isnull = palloc(sizeof(bool) * Max(desc->natts, 1));
	const uint8 *payload;
	const uint8 *sealed;
	int			paylen,
				sealedlen,
				hdrlen,
				natts_w;
	uint8	   *plain;
	HeapTuple	tup;
	LedgerHeader hdr;

	payload = row_frame(rel, phys, &paylen, &hdr, &natts_w);
	hdrlen = HDR_LEN(natts_w);
	sealed = payload;
	sealedlen = paylen;
	if (hdr.external)
		sealed = external_payload(rel, t, payload, hdrlen, &sealedlen);
	heap_deform_tuple(phys, desc, pvalues, pnulls);
	plain = unseal_row(rel, t, payload, hdrlen, &hdr, sealed, sealedlen);

	/* Columns added after the row was sealed keep their physical value. */
	memcpy(values, pvalues, sizeof(Datum) * desc->natts);
	memcpy(isnull, pnulls, sizeof(bool) * desc->natts);
	for (int i = 0; i < natts_w; i++)
		isnull[i] = true;
	decode_row(rel, t, payload,
			   (char *) plain + LEDGER_SALT_LEN,
			   sealedlen - hdrlen - LEDGER_TAG_LEN - LEDGER_SALT_LEN,
			   values, isnull);
	ledger_wipe(plain, sealedlen - hdrlen - LEDGER_TAG_LEN);

	check_plain_values(rel, t, natts_w, pvalues, pnulls, values, isnull,
					   hdr.doc_id);

	MemoryContextSwitchTo(dst->tts_mcxt);
	tup = heap_form_tuple(desc, values, isnull);
	MemoryContextSwitchTo(old);
	ledger_copy_xact_fields(tup->t_data, phys->t_data);
	tup->t_self = phys->t_self;
	tup->t_tableOid = phys->t_tableOid;
	ExecForceStoreHeapTuple(tup, dst, true);
	dst->tts_tid = phys->t_self;
	dst->tts_tableOid = phys->t_tableOid;
}

/*
 * The first 8 bytes of SHA-256 over a payload header, flags byte zeroed:
 * a row and its journal revision are one sealing exactly when these agree,
 * since the header holds the sealing's random nonce, and the flags byte
 * only says where the ciphertext is kept.
 */
static void
fingerprint_of(const uint8 *hdr, int hdrlen, uint8 *fingerprint)
{
	uint8		copy[LEDGER_HEADER_MAX];
	uint8		hash[LEDGER_HASH_LEN];

	memcpy(copy, hdr, hdrlen);
	copy[HDR_FLAGS] = 0;
	ledger_sha256(copy, hdrlen, hash);
	memcpy(fingerprint, hash, LEDGER_FINGERPRINT_LEN);
}

/* How many bytes of a payload of this table hold at most its header. */
int
ledger_header_len(Relation rel)
{
	return HDR_LEN(RelationGetDescr(rel)->natts);
}

/*
 * The fingerprint of a journal payload, given its first bytes (at least
 * its header); false if they hold no whole header.
 */
bool
ledger_header_fingerprint(bytea *start, uint8 *fingerprint)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(start);
	int			len = VARSIZE_ANY_EXHDR(start);
	int			hdrlen;

	if (len < HDR_FIXED || p[HDR_FORMAT] != FORMAT_V1)
		return false;
	hdrlen = HDR_LEN(get_be16(p + HDR_NATTS));
	if (len < hdrlen || hdrlen > LEDGER_HEADER_MAX)
		return false;
	fingerprint_of(p, hdrlen, fingerprint);
	return true;
}

/*
 * For ledger_verify('full'): check a current row as ledger_open() would
 * open it, and return its header and fingerprint, which the caller must
 * find on the committed revision.  Building the row is only needed where
 * it has columns in the clear to compare with their sealed values; other
 * rows are only authenticated, and a row that keeps only its header has
 * nothing more to check here: its revision's payload is the caller's to
 * verify.  Decoding and rebuilding every row, and fetching and decrypting
 * again the journal payload of each header-only row, took two thirds of
 * verifying large rows (perf).
 */
void
ledger_check_row(Relation rel, HeapTuple phys, TupleTableSlot *scratch,
				 LedgerHeader *hdr, uint8 *fingerprint)
{
	LedgerTable *t = ledger_table(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;
	const uint8 *payload;
	int			paylen,
				natts_w,
				hdrlen;
	Datum	   *pvalues;
	bool	   *pnulls;

	if (!bms_is_empty(t->plainset))
	{
		ledger_open(rel, phys, scratch);
		ExecClearTuple(scratch);
	}
	old = MemoryContextSwitchTo(scratch_context());
	payload = row_frame(rel, phys, &paylen, hdr, &natts_w);
	hdrlen = HDR_LEN(natts_w);
	fingerprint_of(payload, hdrlen, fingerprint);
	if (bms_is_empty(t->plainset))
	{
		pvalues = palloc(sizeof(Datum) * Max(desc->natts, 1));
		pnulls = palloc(sizeof(bool) * Max(desc->natts, 1));
		heap_deform_tuple(phys, desc, pvalues, pnulls);
		/* No column is in the clear: those in the payload must be NULL here. */
		check_plain_values(rel, t, natts_w, pvalues, pnulls, pvalues, pnulls,
						   hdr->doc_id);
		if (!hdr->external)
			ledger_wipe(unseal_row(rel, t, payload, hdrlen, hdr, payload, paylen),
						paylen - hdrlen - LEDGER_TAG_LEN);
	}
	MemoryContextSwitchTo(old);
}

/*
 * True if the physical tuple holds, for every column in attnums, exactly
 * the value of the opened row: an index over these columns built from the
 * physical tuples agrees with the rows.
 */
bool
ledger_plain_values_match(Relation rel, HeapTuple phys, TupleTableSlot *opened,
						  const Bitmapset *attnums)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			natts_phys = HeapTupleHeaderGetNatts(phys->t_data);
	int			x = -1;

	slot_getallattrs(opened);
	while ((x = bms_next_member(attnums, x)) >= 0)
	{
		Form_pg_attribute att = TupleDescAttr(desc, x - 1);
		bool		pnull;
		Datum		pval;

		if (x < 1 || x > desc->natts)
			return false;
		if (x > natts_phys)
			continue;			/* reads as its default in both */
		pval = heap_getattr(phys, x, desc, &pnull);
		if (pnull != opened->tts_isnull[x - 1])
			return false;
		if (!pnull && !datum_image_eq(pval, opened->tts_values[x - 1],
									  att->attbyval, att->attlen))
			return false;
	}
	return true;
}

void
ledger_tombstone(Relation rel, const LedgerHeader *old, LedgerRevision *rev)
{
	LedgerTable *t = ledger_table(rel);

	memset(rev, 0, sizeof(LedgerRevision));
	rev->table_id = t->table_id;
	rev->doc_id = old->doc_id;
	rev->version = old->version + 1;
	rev->op = LEDGER_OP_DELETE;
	ledger_revision_hash(rev);
}

/*
 * Give an opened or executor tuple the transaction fields of the physical
 * tuple, so that system columns (xmin, xmax, cmin, ctid) read the same.
 */
void
ledger_copy_xact_fields(HeapTupleHeader dst, HeapTupleHeader src)
{
	dst->t_choice = src->t_choice;
	dst->t_ctid = src->t_ctid;
	dst->t_infomask = (dst->t_infomask & ~HEAP_XACT_MASK) |
		(src->t_infomask & HEAP_XACT_MASK);
	dst->t_infomask2 = (dst->t_infomask2 & ~HEAP2_XACT_MASK) |
		(src->t_infomask2 & HEAP2_XACT_MASK);
}

/*
 * The physical tuple a rewrite writes for phys (rewrite.c).  It is full
 * width, since a rewrite clears the catalog's values for columns added
 * later: the row's values for those are kept physically.  With a plaintext
 * set, the opened row's values fill the set's columns (re-sealing).  The
 * payload bytes are kept as they are either way.
 */
HeapTuple
ledger_rewrite_tuple(Relation rel, HeapTuple phys, const Bitmapset *plainset,
					 TupleTableSlot *scratch)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *pvalues;
	bool	   *pnulls;
	const uint8 *payload;
	int			paylen;
	HeapTuple	tup;

	if (plainset == NULL && HeapTupleHeaderGetNatts(phys->t_data) == desc->natts)
		return heap_copytuple(phys);
	payload = find_payload(rel, phys, &paylen);
	pvalues = palloc(sizeof(Datum) * Max(desc->natts, 1));
	pnulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	if (plainset == NULL)
		heap_deform_tuple(phys, desc, pvalues, pnulls);
	else
	{
		ledger_open(rel, phys, scratch);
		slot_getallattrs(scratch);
		plain_values(ledger_table(rel), plainset, get_be16(payload + HDR_NATTS),
					 scratch->tts_values, scratch->tts_isnull, pvalues, pnulls);
	}
	tup = form_physical(rel, pvalues, pnulls, payload, paylen);
	pfree(pvalues);
	pfree(pnulls);
	return tup;
}
