//! `wsgi.file_wrapper`: wraps a file-like object. When the wrapped object is a
//! real file the response driver sends it as a file (sendfile); otherwise it
//! iterates in `blksize` blocks like any iterable.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// `wsgi.file_wrapper`: a file-like object to send whole.
#[pyclass(module = "mod_wsgi", immutable_type)]
pub struct FileWrapper {
    /// The object.
    pub filelike: Py<PyAny>,
    /// Block size when it is iterated.
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    /// `wsgi.file_wrapper(filelike, blksize)`.
    #[new]
    #[pyo3(signature = (filelike, blksize = 8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    /// Iterates over blocks.
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next block, read with `read(blksize)`.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        let empty = match block.cast::<PyBytes>() {
            Ok(b) => b.as_bytes().is_empty(),
            Err(_) => !block.is_truthy()?,
        };
        if empty {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(block)
    }

    /// Closes the file, if it has `close()`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if let Some(close) = filelike.getattr_opt("close")? {
            close.call0()?;
        }
        Ok(())
    }
}
