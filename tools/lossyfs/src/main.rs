//! `lossyfs`: a FUSE filesystem for power-loss tests, in the spirit of LazyFS (the one Jepsen uses).
//!
//! `lossyfs <backing-dir> <mountpoint> [--control <socket>]` mounts `backing-dir` at `mountpoint` and runs in
//! the foreground until the mount goes away or it gets SIGTERM/SIGINT (then it unmounts). File data written
//! through the mount and not yet fsynced is kept in memory; a **power loss** drops all of it, so the mount
//! shows only what was fsynced (namespace changes are kept: see `fs.rs`). A power loss is asked for by:
//! - a line `power-loss` on the control socket, answered `ok files=F bytes=B` once the data is gone and the
//!   kernel's caches of those files are invalidated (the way tests use it: they know when it is done);
//! - SIGUSR1, which logs the same line to stderr.
//!
//! The socket also answers `status` with the unsynced bytes held. The process mounts with the `mount`
//! system call when root, else through `fusermount3` (Debian's `fuse3`); no libfuse is linked.

mod fs;
mod overlay;
mod sys;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fuser::{Config, MountOption, Notifier};

use crate::fs::{LossyFs, PowerLossReport};

const USAGE: &str = "usage: lossyfs <backing-dir> <mountpoint> [--control <socket>] [--threads N]";

struct Args {
    backing: PathBuf,
    mountpoint: PathBuf,
    control: Option<PathBuf>,
    threads: usize,
}

fn parse_args() -> Result<Args> {
    let mut positional = Vec::new();
    let mut control = None;
    let mut threads = 4;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--control") => control = Some(PathBuf::from(args.next().context(USAGE)?)),
            Some("--threads") => {
                threads = args.next().and_then(|n| n.to_str()?.parse().ok()).filter(|n| *n > 0).context(USAGE)?
            }
            Some("-h" | "--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [backing, mountpoint] = <[PathBuf; 2]>::try_from(positional).map_err(|_| anyhow::anyhow!(USAGE))?;
    Ok(Args { backing, mountpoint, control, threads })
}

enum Event {
    PowerLoss(Option<mpsc::Sender<String>>),
    Status(mpsc::Sender<String>),
    Stop(&'static str),
}

/// Serves the control socket: one line in, one line out, per connection.
fn serve_control(listener: UnixListener, events: mpsc::Sender<Event>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let events = events.clone();
        std::thread::spawn(move || {
            if let Err(e) = answer(stream, &events) {
                eprintln!("lossyfs: control connection: {e}");
            }
        });
    }
}

fn answer(stream: UnixStream, events: &mpsc::Sender<Event>) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (reply_to, reply) = mpsc::channel();
    let event = match line.trim() {
        "power-loss" => Event::PowerLoss(Some(reply_to)),
        "status" => Event::Status(reply_to),
        other => {
            writeln!(&stream, "error unknown command {other:?}")?;
            return Ok(());
        }
    };
    events.send(event).context("lossyfs is stopping")?;
    let text = reply.recv_timeout(Duration::from_secs(30)).context("no answer")?;
    writeln!(&stream, "{text}")?;
    Ok(())
}

fn power_loss(filesystem: &LossyFs, notifier: &Notifier) -> String {
    let PowerLossReport { files, bytes, inodes } = filesystem.power_loss();
    for ino in inodes {
        // The kernel may have cached pages and a size that are gone now. ENOENT: it no longer knows the inode.
        if let Err(e) = notifier.inval_inode(fuser::INodeNo(ino), 0, 0) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                eprintln!("lossyfs: invalidating inode {ino}: {e}");
            }
        }
    }
    format!("ok files={files} bytes={bytes}")
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let filesystem =
        LossyFs::new(&args.backing).with_context(|| format!("opening backing directory {}", args.backing.display()))?;
    let (events, incoming) = mpsc::channel();

    if let Some(path) = &args.control {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).with_context(|| format!("binding control socket {}", path.display()))?;
        let events = events.clone();
        std::thread::spawn(move || serve_control(listener, events));
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGUSR1,
    ])?;
    {
        let events = events.clone();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                let event = match signal {
                    signal_hook::consts::SIGUSR1 => Event::PowerLoss(None),
                    signal_hook::consts::SIGINT => Event::Stop("SIGINT"),
                    _ => Event::Stop("SIGTERM"),
                };
                if events.send(event).is_err() {
                    return;
                }
            }
        });
    }

    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("lossyfs".into()), MountOption::Subtype("lossyfs".into())];
    config.n_threads = Some(args.threads);
    let session = fuser::spawn_mount(filesystem.clone(), &args.mountpoint, &config)
        .with_context(|| format!("mounting {}", args.mountpoint.display()))?;
    let notifier = session.notifier();
    eprintln!("lossyfs: {} mounted on {}", args.backing.display(), args.mountpoint.display());

    let reason = loop {
        match incoming.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::PowerLoss(reply)) => {
                let text = power_loss(&filesystem, &notifier);
                eprintln!("lossyfs: power loss: {text}");
                if let Some(reply) = reply {
                    let _ = reply.send(text);
                }
            }
            Ok(Event::Status(reply)) => {
                let _ = reply.send(format!("ok unsynced_bytes={}", filesystem.unsynced_bytes()));
            }
            Ok(Event::Stop(why)) => break why,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if session.guard.is_finished() {
                    break "the mount went away";
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break "no event source left",
        }
    };
    eprintln!("lossyfs: stopping ({reason}), unmounting {}", args.mountpoint.display());
    if session.guard.is_finished() {
        return session.join().context("the FUSE session failed");
    }
    // Unmount, then wait (bounded) for the session to end. It may not: a copy of this mount in another mount
    // namespace (`ip netns exec` makes one of every mount) keeps the connection alive after our unmount.
    // Exiting then closes /dev/fuse, which aborts the connection everywhere.
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(session.umount_and_join());
    });
    match finished.recv_timeout(Duration::from_secs(1)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            // Busy (a process still has files open there): detach it; exiting aborts the connection, so that
            // process's I/O then fails.
            let mountpoint = sys::c_name(args.mountpoint.as_os_str())?;
            // SAFETY: `mountpoint` is a valid C string.
            if unsafe { libc::umount2(mountpoint.as_ptr(), libc::MNT_DETACH) } != 0 {
                let lazy = std::io::Error::last_os_error();
                bail!("unmounting {}: {e}; lazy unmount: {lazy}", args.mountpoint.display());
            }
            eprintln!("lossyfs: unmount failed ({e}); detached it lazily");
        }
        Err(_) => eprintln!("lossyfs: unmounted, but the session lives on elsewhere; exiting ends it"),
    }
    Ok(())
}
