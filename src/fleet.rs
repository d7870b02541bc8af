//! Commands over many plan files (`swing plan DIR`): each file is read, validated and planned
//! on its own, a chunk of files at a time spread over the machine's cores, and the results are
//! handed on in file order — so memory holds one chunk, never the fleet, and what is written
//! is exactly what planning the files one after another writes.
//!
//! Owns: the chunking and the worker threads. Must not: print, or decide what is done with a
//! file (the caller's functions do both).

/// Files per worker thread and chunk.
const CHUNK_PER_WORKER: usize = 32;

/// Runs `work` over `items` on up to the machine's parallelism, and hands each result to
/// `then` in item order, one chunk at a time; stops at the first `Err` of `then`.
pub fn for_each_ordered<I, T, E>(
    items: &[I],
    work: impl Fn(&I) -> T + Sync,
    mut then: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E>
where
    I: Sync,
    T: Send,
{
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(1);
    for chunk in items.chunks(workers * CHUNK_PER_WORKER) {
        let per = chunk.len().div_ceil(workers).max(1);
        let work = &work;
        let done: Vec<T> = std::thread::scope(|s| {
            let parts: Vec<_> = chunk
                .chunks(per)
                .map(|part| s.spawn(move || part.iter().map(work).collect::<Vec<T>>()))
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for r in done {
            then(r)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_in_item_order_and_the_first_error_stops() {
        let items: Vec<u32> = (0..1_000).collect();
        let mut seen = Vec::new();
        let r: Result<(), ()> = super::for_each_ordered(
            &items,
            |i| i * 2,
            |x| {
                seen.push(x);
                Ok(())
            },
        );
        assert!(r.is_ok());
        assert_eq!(seen, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let mut n = 0;
        let r = super::for_each_ordered(
            &items,
            |i| *i,
            |x| {
                n += 1;
                if x == 10 { Err(x) } else { Ok(()) }
            },
        );
        assert_eq!((r, n), (Err(10), 11));
    }
}
