//! Work-around for sqlx 0.9.0, which no longer sets TCP_NODELAY on its sockets
//! (transact-rs/sqlx#4335, fixed by #4336 after that release). Without it every COPY
//! ends with a ~40 ms stall: the small CopyDone waits for the server's delayed ACK
//! (Nagle's algorithm). sqlx does not expose its socket, so this finds the process's
//! TCP sockets through /proc/self/fd and sets the option on them. Call it right after
//! connecting, while the database connection is the only TCP socket of `datagen pg`.

use std::os::fd::BorrowedFd;

use socket2::{SockRef, Type};

/// Sets TCP_NODELAY on every connected TCP socket of this process; returns how many.
/// Best effort: on systems without /proc nothing happens.
pub fn set_on_tcp_sockets() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor was just listed as open in this process and is only
        // borrowed for the two calls below; nothing is closed or taken over.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = SockRef::from(&fd);
        let tcp = sock.r#type().is_ok_and(|t| t == Type::STREAM)
            && sock.peer_addr().is_ok_and(|a| a.as_socket().is_some());
        if tcp && sock.set_tcp_nodelay(true).is_ok() {
            n += 1;
        }
    }
    n
}
