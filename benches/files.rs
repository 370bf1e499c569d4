//! How a static file is read (issue 23): the cost of serving a 1 KiB file's bytes three ways,
//! to choose the one `src/proxy/files.rs` uses. Run with `cargo bench --bench files`.
//!
//! - `blocking`: what switchyard does, on the worker thread: open, fstat, the root check
//!   (readlink of the descriptor), pread, fstat (the change check), close.
//! - `spawn_blocking`: the same work handed to tokio's blocking pool and awaited, which is
//!   what `tokio::fs` does for every call (here one hand-off for all of it, its best case).
//! - `cached_fd`: only pread + fstat on a descriptor kept open, what an open-file cache such as
//!   nginx's `open_file_cache` would leave per request.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use switchyard::files::{self, Found};

fn read_blocking(path: &Path, root: &Path, real: &Path) -> usize {
    let Found::File(f) = files::open(path.to_path_buf(), root, Some(real), false) else {
        panic!("the bench file is missing");
    };
    let mut buf = vec![0u8; f.len as usize];
    f.file.read_exact_at(&mut buf, 0).expect("read");
    assert!(f.unchanged().expect("fstat"));
    buf.len()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("scratch dir");
    let root = dir.path().to_path_buf();
    let real = std::fs::canonicalize(&root).expect("real root");
    let path: PathBuf = root.join("1k.bin");
    std::fs::write(&path, vec![7u8; 1024]).expect("write the bench file");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    let mut g = c.benchmark_group("static_1k");
    g.bench_function("blocking", |b| {
        b.iter(|| black_box(read_blocking(&path, &root, &real)))
    });
    g.bench_function("spawn_blocking", |b| {
        b.iter(|| {
            let (p, r, rr) = (path.clone(), root.clone(), real.clone());
            rt.block_on(async move {
                tokio::task::spawn_blocking(move || read_blocking(&p, &r, &rr))
                    .await
                    .expect("join")
            })
        })
    });
    let Found::File(open) = files::open(path.clone(), &root, Some(&real), false) else {
        panic!("the bench file is missing");
    };
    g.bench_function("cached_fd", |b| {
        b.iter(|| {
            let mut buf = vec![0u8; open.len as usize];
            open.file.read_exact_at(&mut buf, 0).expect("read");
            black_box(open.unchanged().expect("fstat"));
            buf.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
