"""TensorBoard event files -> the long scalar frame (:func:`runlens.read_scalars`).

The modules, in the order data flows through them:

- :mod:`.sources` finds the event files of a logdir (local or fsspec) and decides their order;
- :mod:`.tfrecord` is the record format and its CRCs; :mod:`.records` reads one file's records,
  around damage (:mod:`.problems`: what went wrong, as data); :mod:`.whole_files` frames many small
  files at once;
- :mod:`.decode` turns records into scalar rows (:mod:`.rows`), the common shapes with numpy,
  the rest with protobuf (:mod:`.decode_protobuf`);
- :mod:`.files` reads a task's files; :mod:`.cache` and :mod:`.pack` keep what was read;
- :mod:`.logdir` reads a whole logdir, in parallel, and assembles the frame.

Words used throughout, from the bytes up:

- **record**: one TFRecord (one ``Event``): length, CRC, payload, CRC.
- **block** (:class:`.records.Block`): the whole, CRC-checked records lying in one buffer read from
  one file (512 KiB at a time, or one larger record); or, for small files framed together, from
  several files (``sources`` says whose each record is).
- **state** (:class:`.records.ReadState`): where reading one file stands -- the offset after the
  last whole record, the records counted, the problems found; a new read starts from
  ``ReadState(path)``, a file that grew is read on from ``state.resumable()``.
- **batch**: blocks decoded together, up to 512 KiB (:data:`.files.BATCH_BYTES`), of one file or of
  many small ones; decoding a batch gives one **part**: a :class:`.rows.Rows` of columns.
- **task**: the files one call of :func:`.files.read_event_files` reads (up to 512 files or
  8 MiB, the unit handed to a worker process); it gives one **chunk**
  (:class:`.files.ChunkRows`): the task's parts, and per file its row count, state and plugins.
  The cache stores chunks as they are.
- **piece** (``logdir._Piece``): consecutive files of one chunk that are also consecutive in the
  frame's order; the frame is assembled piece by piece, column by column, so a sweep of thousands
  of files is assembled from a few pieces.
"""
