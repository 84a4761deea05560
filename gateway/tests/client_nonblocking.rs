//! The client's non-blocking halves (what `fincore load` drives from one event loop),
//! against a scripted peer on 127.0.0.1: a message split across reads arrives whole and
//! once; output the socket cannot take yet stays queued and goes out complete and in
//! order; a read says whether it left the socket empty; a peer that never answers ends
//! the blocking client's wait.

use fincore_engine::UserId;
use fincore_gateway::client::{Arrival, Client, ClientError, LoginOptions, SILENCE_MIN};
use fincore_gateway::wire::{ClientMsg, LoginAccepted, ServerMsg};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A client logged in to a peer that accepts any login; returns both ends.
fn logged_in() -> (Client, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut login = [0u8; 512];
        let _ = stream.read(&mut login).expect("login bytes");
        let accepted = LoginAccepted {
            session_id: 7,
            user: UserId(3),
            admin: false,
            heartbeat_ms: 60_000,
            next_seq: 2,
        };
        let mut reply = Vec::new();
        ServerMsg::LoginAccepted(accepted).encode_into(1, &mut reply);
        stream.write_all(&reply).expect("login reply");
        stream
    });
    let client = Client::connect(addr, "u", "s", LoginOptions::default()).expect("login");
    (client, peer.join().expect("peer"))
}

/// Calls `step` until it yields something, for at most five seconds.
fn eventually<T>(mut step: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = step() {
            return value;
        }
        assert!(Instant::now() < deadline, "nothing within 5 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_message_split_across_reads_arrives_whole_and_once() {
    let (client, mut peer) = logged_in();
    let (_sender, mut receiver) = client.split().expect("split");
    receiver.set_nonblocking(true).expect("non-blocking");
    assert!(receiver.try_recv().expect("nothing yet").is_none());

    let mut frames = Vec::new();
    ServerMsg::Heartbeat.encode_into(2, &mut frames);
    ServerMsg::Logout(1).encode_into(3, &mut frames);
    let cut = 5; // inside the first frame's header
    peer.write_all(&frames[..cut]).expect("first part");
    std::thread::sleep(Duration::from_millis(20));
    assert!(receiver.try_recv().expect("a partial frame").is_none());
    assert!(receiver.next_buffered().expect("still partial").is_none());

    peer.write_all(&frames[cut..]).expect("the rest");
    let heartbeat = eventually(|| receiver.try_recv().expect("whole frame"));
    assert_eq!((heartbeat.seq, heartbeat.msg), (2, ServerMsg::Heartbeat));
    match receiver.try_recv() {
        Err(ClientError::LoggedOut(1)) => {}
        other => panic!("expected the logout notice, got {other:?}"),
    }
}

#[test]
fn output_the_socket_cannot_take_yet_goes_out_complete_and_in_order() {
    let (client, mut peer) = logged_in();
    let (mut sender, receiver) = client.split().expect("split");
    receiver.set_nonblocking(true).expect("non-blocking");

    // Far more than the socket buffers hold while the peer does not read.
    let mut expected = Vec::new();
    for request in 2..2_000_000u64 {
        let queued = sender.queue(&ClientMsg::Heartbeat);
        assert_eq!(queued, request);
        ClientMsg::Heartbeat.encode_into(request, &mut expected);
    }
    assert!(!sender.flush_some().expect("partial write"), "the socket took everything");

    let reader = std::thread::spawn(move || {
        let mut received = Vec::new();
        let mut chunk = [0u8; 65_536];
        peer.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        while let Ok(n @ 1..) = peer.read(&mut chunk) {
            received.extend_from_slice(&chunk[..n]);
        }
        received
    });
    eventually(|| sender.flush_some().expect("write").then_some(()));
    drop(sender);
    drop(receiver);
    let received = reader.join().expect("reader");
    assert_eq!(received.len(), expected.len(), "every byte, once");
    assert!(received == expected, "in order");
}

#[test]
fn a_read_says_whether_it_left_the_socket_empty() {
    let (client, mut peer) = logged_in();
    let (_sender, mut receiver) = client.split().expect("split");
    receiver.set_nonblocking(true).expect("non-blocking");
    assert_eq!(receiver.read_available().expect("nothing yet"), Arrival::Nothing);

    // A few heartbeats: one read takes them all and says the socket is empty.
    let mut few = Vec::new();
    for seq in 2..5 {
        ServerMsg::Heartbeat.encode_into(seq, &mut few);
    }
    peer.write_all(&few).expect("a few frames");
    let arrival = eventually(|| {
        let arrival = receiver.read_available().expect("read");
        (arrival != Arrival::Nothing).then_some(arrival)
    });
    assert_eq!(arrival, Arrival::Drained);
    for seq in 2..5 {
        let message = receiver.next_buffered().expect("decoded").expect("buffered");
        assert_eq!((message.seq, message.msg), (seq, ServerMsg::Heartbeat));
    }

    // More than one read buffer (64 KiB) sent: a read says `More` exactly when it
    // filled its buffer (the socket held at least 64 KiB: how much it may hold at
    // once is the kernel's receive window), `Drained` when it took what was there;
    // reading on takes the rest, in order.
    let mut many = Vec::new();
    let mut seq = 5;
    while many.len() < 100 * 1024 {
        ServerMsg::Heartbeat.encode_into(seq, &mut many);
        seq += 1;
    }
    peer.write_all(&many).expect("many frames");
    std::thread::sleep(Duration::from_millis(50));
    let queued = rustix::io::ioctl_fionread(&receiver).expect("bytes queued");
    let arrival = receiver.read_available().expect("a read");
    if queued >= 64 * 1024 {
        assert_eq!(arrival, Arrival::More, "{queued} bytes queued");
    } else {
        // Bytes still in flight may have arrived between the count and the read.
        assert_ne!(arrival, Arrival::Nothing, "{queued} bytes queued");
    }
    let mut next = 5;
    let deadline = Instant::now() + Duration::from_secs(5);
    while next < seq {
        assert!(Instant::now() < deadline, "frames {next}.. never arrived");
        match receiver.try_recv().expect("frames") {
            Some(message) => {
                assert_eq!((message.seq, message.msg), (next, ServerMsg::Heartbeat));
                next += 1;
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// A peer that accepts the connection and then says nothing (a hung server, or some
/// other program on the port): the login gives up after the documented silence instead
/// of waiting for ever.
#[test]
fn a_peer_that_never_answers_ends_the_login_with_silent() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        std::thread::sleep(Duration::from_secs(12));
        drop(stream);
    });
    let options = LoginOptions { heartbeat_ms: 100, cancel_on_disconnect: false };
    let started = Instant::now();
    let error = Client::connect(addr, "u", "s", options).err().expect("no login");
    let waited = started.elapsed();
    assert!(matches!(error, ClientError::Silent(d) if d == SILENCE_MIN), "{error}");
    assert!(waited >= SILENCE_MIN && waited < SILENCE_MIN + Duration::from_secs(2), "{waited:?}");
    assert_eq!(error.to_string(), "no answer from the server in 10 s");
    peer.join().expect("peer");
}
