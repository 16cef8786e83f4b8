package recsys

import (
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	gblas "gonum.org/v1/gonum/blas/gonum"
)

// impl gives access to gonum's SSE float32 kernels (dot, axpy, gemv); they
// run 2–3× faster than plain Go loops on the 64-wide vectors used here.
// The type is stateless: impl{} costs nothing to create.
type impl = gblas.Implementation

func dot(x, y []float32) float32 {
	if len(x) == 0 {
		return 0
	}
	return impl{}.Sdot(len(x), x, 1, y, 1)
}

// axpy computes y += a·x.
func axpy(a float32, x, y []float32) {
	if len(x) == 0 {
		return
	}
	impl{}.Saxpy(len(x), a, x, 1, y, 1)
}

// gemv computes y = A·x for a row-major rows×cols matrix A.
func gemv(a []float32, rows, cols int, x, y []float32) {
	if rows == 0 || cols == 0 {
		clear(y[:rows])
		return
	}
	impl{}.Sgemv(blas.NoTrans, rows, cols, 1, a, cols, x, 1, 0, y, 1)
}

// gemvLarge is gemv split across cores for catalogue-sized matrices:
// scoring 100K items reads 25 MB of factors, which is memory-bound, and
// two cores pull more bandwidth than one. Rows are independent, so the
// split cannot change any score.
func gemvLarge(a []float32, rows, cols int, x, y []float32) {
	const chunk = 16384
	if rows < 2*chunk {
		gemv(a, rows, cols, x, y)
		return
	}
	parallelChunks(rows, chunk, workers(0), func(_, lo, hi int) {
		gemv(a[lo*cols:hi*cols], hi-lo, cols, x, y[lo:hi])
	})
}

// workers is the number of goroutines for parallel loops. Results never
// depend on it: every parallel loop writes disjoint outputs.
func workers(requested int) int {
	if requested > 0 {
		return requested
	}
	return runtime.GOMAXPROCS(0)
}

// parallelChunks runs fn over [0,n) in chunks of size chunk, handing chunks
// out dynamically so that skewed rows (a collector with 20,000 records)
// do not leave a core idle. fn gets the worker id for scratch buffers.
func parallelChunks(n, chunk, nworkers int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	if chunk < 1 {
		chunk = 1
	}
	nchunks := (n + chunk - 1) / chunk
	if nworkers > nchunks {
		nworkers = nchunks
	}
	if nworkers <= 1 {
		fn(0, 0, n)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range nworkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1)) - 1
				if c >= nchunks {
					return
				}
				lo := c * chunk
				fn(w, lo, min(lo+chunk, n))
			}
		}()
	}
	wg.Wait()
}
