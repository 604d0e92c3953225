/*-------------------------------------------------------------------------
 *
 * revsort.c
 *	  ledger_verify()'s revisions, regrouped by transaction in bounded
 *	  memory.
 *
 * The journal is read in physical order, and each revision becomes a
 * record of 64 bytes: its place in the chain (transaction sequence number,
 * table id, document id, version) and its leaf hash.  Records collect in
 * an array of at most the given memory; a full array is sorted and written
 * to a temporary file as one run, and the runs are merged at the end.  A
 * journal that fits is never written out.
 *
 * tuplesort would do the same for tuples, at about twice the memory per
 * record (a SortTuple and a MinimalTuple header each), so the bench's
 * million revisions would spill to disk under the default
 * maintenance_work_mem, and every comparison would go through
 * SortSupport; these records are fixed-size and compared inline.
 *
 *-------------------------------------------------------------------------
 */
#include "ledger.h"

#include "lib/binaryheap.h"
#include "storage/buffile.h"
#include "utils/memutils.h"

struct LedgerRevSort
{
	MemoryContext cxt;			/* the caller's, which outlives the runs */
	LedgerRevRecord *mem;		/* the run being collected, then read */
	int64		n;
	int64		size;			/* allocated */
	int64		max;			/* the memory budget, in records */
	int64		pos;			/* next to read, with no runs */
	int			nruns;
	BufFile   **runs;
	LedgerRevRecord *heads;		/* each run's current record */
	binaryheap *merge;			/* of run numbers, lowest head first */
};

static inline int
cmp_int64(int64 a, int64 b)
{
	return a < b ? -1 : a > b;
}

int
ledger_rev_record_cmp(const LedgerRevRecord *a, const LedgerRevRecord *b)
{
	int			c;

	if ((c = cmp_int64(a->seq, b->seq)) != 0 ||
		(c = cmp_int64(a->table_id, b->table_id)) != 0 ||
		(c = cmp_int64(a->doc_id, b->doc_id)) != 0)
		return c;
	return cmp_int64(a->version, b->version);
}

#define ST_SORT sort_records
#define ST_ELEMENT_TYPE LedgerRevRecord
#define ST_COMPARE(a, b) ledger_rev_record_cmp(a, b)
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

LedgerRevSort *
ledger_revsort_begin(int mem_kb)
{
	LedgerRevSort *s = palloc0(sizeof(LedgerRevSort));

	s->cxt = CurrentMemoryContext;
	s->max = Max((int64) mem_kb * 1024 / (int64) sizeof(LedgerRevRecord), 1024);
	s->size = Min(s->max, 1024);
	s->mem = palloc(sizeof(LedgerRevRecord) * s->size);
	return s;
}

static void
write_run(LedgerRevSort *s)
{
	MemoryContext old = MemoryContextSwitchTo(s->cxt);
	BufFile    *f = BufFileCreateTemp(false);

	sort_records(s->mem, s->n);
	BufFileWrite(f, s->mem, sizeof(LedgerRevRecord) * s->n);
	if (BufFileSeek(f, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind a temporary file of ledger_verify: %m")));
	s->runs = s->nruns == 0 ? palloc(sizeof(BufFile *)) :
		repalloc(s->runs, sizeof(BufFile *) * (s->nruns + 1));
	s->runs[s->nruns++] = f;
	s->n = 0;
	MemoryContextSwitchTo(old);
}

void
ledger_revsort_put(LedgerRevSort *s, const LedgerRevRecord *r)
{
	if (s->n == s->size)
	{
		if (s->size == s->max)
			write_run(s);
		else
		{
			s->size = Min(s->max, s->size * 2);
			s->mem = repalloc_huge(s->mem, sizeof(LedgerRevRecord) * s->size);
		}
	}
	s->mem[s->n++] = *r;
}

/* The next record of a run into its head; false at the run's end. */
static bool
read_head(LedgerRevSort *s, int run)
{
	size_t		got = BufFileRead(s->runs[run], &s->heads[run],
								  sizeof(LedgerRevRecord));

	if (got == 0)
		return false;
	if (got != sizeof(LedgerRevRecord))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read a temporary file of ledger_verify: read only %zu of %zu bytes",
						got, sizeof(LedgerRevRecord))));
	return true;
}

/* binaryheap keeps its greatest element first: invert the order. */
static int
merge_cmp(Datum a, Datum b, void *arg)
{
	LedgerRevSort *s = arg;

	return ledger_rev_record_cmp(&s->heads[DatumGetInt32(b)],
								 &s->heads[DatumGetInt32(a)]);
}

/* Every record is in: sort them, or merge the runs. */
void
ledger_revsort_done(LedgerRevSort *s)
{
	if (s->nruns == 0)
	{
		sort_records(s->mem, s->n);
		return;
	}
	if (s->n > 0)
		write_run(s);
	pfree(s->mem);
	s->mem = NULL;
	s->heads = palloc(sizeof(LedgerRevRecord) * s->nruns);
	s->merge = binaryheap_allocate(s->nruns, merge_cmp, s);
	for (int i = 0; i < s->nruns; i++)
		if (read_head(s, i))
			binaryheap_add_unordered(s->merge, Int32GetDatum(i));
	binaryheap_build(s->merge);
}

/* The lowest record not yet passed, or NULL when all have been. */
const LedgerRevRecord *
ledger_revsort_peek(LedgerRevSort *s)
{
	if (s->merge == NULL)
		return s->pos < s->n ? &s->mem[s->pos] : NULL;
	if (binaryheap_empty(s->merge))
		return NULL;
	return &s->heads[DatumGetInt32(binaryheap_first(s->merge))];
}

void
ledger_revsort_next(LedgerRevSort *s)
{
	int			run;

	if (s->merge == NULL)
	{
		s->pos++;
		return;
	}
	run = DatumGetInt32(binaryheap_first(s->merge));
	if (read_head(s, run))
		binaryheap_replace_first(s->merge, Int32GetDatum(run));
	else
		(void) binaryheap_remove_first(s->merge);
}

void
ledger_revsort_end(LedgerRevSort *s)
{
	for (int i = 0; i < s->nruns; i++)
		BufFileClose(s->runs[i]);
	if (s->mem != NULL)
		pfree(s->mem);
	pfree(s);
}
