//! Runnable examples of the stack; each lives in `src/bin/`.
