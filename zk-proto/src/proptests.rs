//! Property tests: every record, request and response round-trips; no input makes a
//! decoder panic; frames reassemble the same however the stream is cut.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::arbitrary::ArbitraryRecord;
use crate::*;

/// Encoding then decoding gives the value back, and re-encoding gives the same bytes.
fn round_trips<T: Record + ArbitraryRecord + PartialEq>(value: T) -> Result<(), TestCaseError> {
    let bytes = value.to_bytes();
    let decoded = T::from_bytes(bytes.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&decoded, &value);
    prop_assert_eq!(decoded.to_bytes(), bytes);
    Ok(())
}

macro_rules! round_trip_tests {
    ($($test:ident: $ty:ty),* $(,)?) => {
        proptest! {
            $(
                #[test]
                fn $test(value in <$ty as ArbitraryRecord>::strategy()) {
                    round_trips(value)?;
                }
            )*
        }
    };
}

round_trip_tests! {
    connect_request: ConnectRequest,
    connect_response: ConnectResponse,
    request_header: RequestHeader,
    reply_header: ReplyHeader,
    error_response: ErrorResponse,
    stat: Stat,
    id: Id,
    acl: Acl,
    create_request: CreateRequest,
    create_ttl_request: CreateTtlRequest,
    create_response: CreateResponse,
    create2_response: Create2Response,
    delete_request: DeleteRequest,
    exists_request: ExistsRequest,
    exists_response: ExistsResponse,
    get_data_request: GetDataRequest,
    get_data_response: GetDataResponse,
    set_data_request: SetDataRequest,
    set_data_response: SetDataResponse,
    get_acl_request: GetAclRequest,
    get_acl_response: GetAclResponse,
    set_acl_request: SetAclRequest,
    set_acl_response: SetAclResponse,
    get_children_request: GetChildrenRequest,
    get_children_response: GetChildrenResponse,
    get_children2_request: GetChildren2Request,
    get_children2_response: GetChildren2Response,
    sync_request: SyncRequest,
    sync_response: SyncResponse,
    check_version_request: CheckVersionRequest,
    get_ephemerals_request: GetEphemeralsRequest,
    get_ephemerals_response: GetEphemeralsResponse,
    get_all_children_number_request: GetAllChildrenNumberRequest,
    get_all_children_number_response: GetAllChildrenNumberResponse,
    multi_request: MultiRequest,
    multi_response: MultiResponse,
    reconfig_request: ReconfigRequest,
    watcher_event: WatcherEvent,
    set_watches: SetWatches,
    set_watches2: SetWatches2,
    check_watches_request: CheckWatchesRequest,
    remove_watches_request: RemoveWatchesRequest,
    add_watch_request: AddWatchRequest,
    auth_packet: AuthPacket,
    sasl_request: GetSaslRequest,
    sasl_response: SetSaslResponse,
    client_info: ClientInfo,
    who_am_i_response: WhoAmIResponse,
    multi_header: MultiHeader,
}

/// Every opcode the protocol defines. The body decoders take an [`OpCode`], so a value
/// the protocol does not define cannot reach them (`RequestHeader::op` gives `None` and
/// the server answers Unimplemented); [`any_raw_opcode`] covers those values.
fn any_opcode() -> impl Strategy<Value = OpCode> {
    proptest::sample::select(OpCode::ALL.to_vec())
}

/// Opcodes as they come off the wire: defined ones, their neighbours, and any `i32`.
fn any_raw_opcode() -> impl Strategy<Value = i32> {
    prop_oneof![
        any_opcode().prop_map(OpCode::code),
        (-12..=110i32),
        any::<i32>(),
    ]
}

/// A strategy over every successful reply body to a request with `op`, or `None` when
/// no reply to `op` has a body shape (opcodes a client never sends).
fn response_strategy(op: OpCode) -> Option<BoxedStrategy<Response>> {
    use OpCode::*;
    Some(match op {
        Delete | Ping | Auth | SetWatches | SetWatches2 | CheckWatches | RemoveWatches
        | CloseSession => Just(Response::Empty).boxed(),
        Create => CreateResponse::strategy()
            .prop_map(Response::Create)
            .boxed(),
        Create2 | CreateContainer | CreateTtl => Create2Response::strategy()
            .prop_map(Response::Create2)
            .boxed(),
        Exists => ExistsResponse::strategy()
            .prop_map(Response::Exists)
            .boxed(),
        GetData | Reconfig => GetDataResponse::strategy()
            .prop_map(Response::GetData)
            .boxed(),
        SetData | Check => SetDataResponse::strategy()
            .prop_map(Response::SetData)
            .boxed(),
        GetAcl => GetAclResponse::strategy()
            .prop_map(Response::GetAcl)
            .boxed(),
        SetAcl => SetAclResponse::strategy()
            .prop_map(Response::SetAcl)
            .boxed(),
        GetChildren => GetChildrenResponse::strategy()
            .prop_map(Response::GetChildren)
            .boxed(),
        GetChildren2 => GetChildren2Response::strategy()
            .prop_map(Response::GetChildren2)
            .boxed(),
        Sync => SyncResponse::strategy().prop_map(Response::Sync).boxed(),
        Multi | MultiRead => MultiResponse::strategy().prop_map(Response::Multi).boxed(),
        Sasl => SetSaslResponse::strategy().prop_map(Response::Sasl).boxed(),
        GetEphemerals => GetEphemeralsResponse::strategy()
            .prop_map(Response::GetEphemerals)
            .boxed(),
        GetAllChildrenNumber => GetAllChildrenNumberResponse::strategy()
            .prop_map(Response::GetAllChildrenNumber)
            .boxed(),
        AddWatch => ErrorResponse::strategy()
            .prop_map(Response::AddWatch)
            .boxed(),
        WhoAmI => WhoAmIResponse::strategy()
            .prop_map(Response::WhoAmI)
            .boxed(),
        Notification | DeleteContainer | CreateSession | Error => return None,
    })
}

/// An opcode a reply can answer, with any body of the shape that opcode's reply has.
fn any_response() -> impl Strategy<Value = (OpCode, Response)> {
    let answerable: Vec<OpCode> = OpCode::ALL
        .iter()
        .copied()
        .filter(|op| response_strategy(*op).is_some())
        .collect();
    proptest::sample::select(answerable).prop_flat_map(|op| {
        response_strategy(op)
            .expect("filtered to answerable opcodes")
            .prop_map(move |response| (op, response))
    })
}

#[test]
fn response_strategies_cover_exactly_the_opcodes_a_reply_can_answer() {
    for op in OpCode::ALL {
        let refused = matches!(
            Response::decode(*op, Bytes::new()),
            Err(DecodeError::InvalidValue {
                what: "response opcode",
                ..
            })
        );
        assert_eq!(response_strategy(*op).is_none(), refused, "{op:?}");
    }
}

/// Splits a byte stream into frames the way a connection does: returns the frames, the
/// error that stopped it (if any) and, without an error, the bytes left over.
fn split_frames(
    max_len: usize,
    chunks: &[&[u8]],
) -> Result<(Vec<Bytes>, Option<String>, Bytes), TestCaseError> {
    let mut decoder = FrameDecoder::new(max_len);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let result = decoder.decode(&mut buf);
            // Whatever it reserved is bounded by the maximum frame and what was fed (the
            // factor 2: BytesMut grows by doubling, for our appends as for its reserve).
            let bound = 2 * (max_len + frame::LENGTH_PREFIX + fed).max(8);
            prop_assert!(
                buf.capacity() <= bound,
                "capacity {} after {} bytes fed, max_len {}",
                buf.capacity(),
                fed,
                max_len
            );
            match result {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                // The stream ends here: what is left of it means nothing.
                Err(e) => return Ok((frames, Some(e.to_string()), Bytes::new())),
            }
        }
    }
    Ok((frames, None, buf.freeze()))
}

fn any_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        CreateRequest::strategy().prop_map(Request::Create),
        CreateRequest::strategy().prop_map(Request::Create2),
        CreateRequest::strategy().prop_map(Request::CreateContainer),
        CreateTtlRequest::strategy().prop_map(Request::CreateTtl),
        DeleteRequest::strategy().prop_map(Request::Delete),
        ExistsRequest::strategy().prop_map(Request::Exists),
        GetDataRequest::strategy().prop_map(Request::GetData),
        SetDataRequest::strategy().prop_map(Request::SetData),
        GetAclRequest::strategy().prop_map(Request::GetAcl),
        SetAclRequest::strategy().prop_map(Request::SetAcl),
        GetChildrenRequest::strategy().prop_map(Request::GetChildren),
        GetChildren2Request::strategy().prop_map(Request::GetChildren2),
        SyncRequest::strategy().prop_map(Request::Sync),
        Just(Request::Ping),
        CheckVersionRequest::strategy().prop_map(Request::Check),
        MultiRequest::strategy().prop_map(Request::Multi),
        MultiRequest::strategy().prop_map(Request::MultiRead),
        ReconfigRequest::strategy().prop_map(Request::Reconfig),
        CheckWatchesRequest::strategy().prop_map(Request::CheckWatches),
        RemoveWatchesRequest::strategy().prop_map(Request::RemoveWatches),
        AuthPacket::strategy().prop_map(Request::Auth),
        SetWatches::strategy().prop_map(Request::SetWatches),
        SetWatches2::strategy().prop_map(Request::SetWatches2),
        GetSaslRequest::strategy().prop_map(Request::Sasl),
        GetEphemeralsRequest::strategy().prop_map(Request::GetEphemerals),
        GetAllChildrenNumberRequest::strategy().prop_map(Request::GetAllChildrenNumber),
        AddWatchRequest::strategy().prop_map(Request::AddWatch),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
    ]
}

proptest! {
    #[test]
    fn every_response_round_trips_through_its_request_opcode((op, response) in any_response()) {
        let mut w = BytesMut::new();
        response.write(&mut w);
        prop_assert_eq!(Response::decode(op, w.freeze()), Ok(response));
    }

    /// Valid frames (some longer than the maximum), then arbitrary bytes, cut at
    /// arbitrary points: the same frames and the same error come out as from the whole
    /// stream at once, with nothing reserved beyond the maximum frame.
    #[test]
    fn frames_reassemble_identically_however_the_stream_is_cut(
        max_len in 0usize..300,
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let mut stream = BytesMut::new();
        for payload in &payloads {
            frame::write_frame(&mut stream, |w| w.extend_from_slice(payload));
        }
        stream.extend_from_slice(&tail);
        let stream = stream.freeze();

        let whole = split_frames(max_len, &[&stream[..]])?;
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let chunks: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
        let cut = split_frames(max_len, &chunks)?;
        prop_assert_eq!(&cut, &whole);

        // The frames that came out are the payloads that fit, in order, up to the
        // first one that did not.
        let fitting: Vec<&[u8]> = payloads
            .iter()
            .take_while(|p| p.len() <= max_len)
            .map(|p| &p[..])
            .collect();
        let got: Vec<&[u8]> = whole.0.iter().map(|f| &f[..]).collect();
        prop_assert_eq!(&got[..fitting.len()], &fitting[..]);
        if fitting.len() < payloads.len() {
            prop_assert_eq!(got.len(), fitting.len());
            prop_assert!(whole.1.is_some(), "an oversize frame must be refused");
        }
    }

    /// Arbitrary bytes as a connection's whole input, cut anywhere: never a panic, the
    /// same outcome as in one piece.
    #[test]
    fn arbitrary_byte_streams_split_the_same_in_any_pieces(
        max_len in prop_oneof![0usize..64, Just(frame::DEFAULT_MAX_BUFFER)],
        stream in proptest::collection::vec(any::<u8>(), 0..256),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let whole = split_frames(max_len, &[&stream[..]])?;
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let chunks: Vec<&[u8]> = points.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
        prop_assert_eq!(split_frames(max_len, &chunks)?, whole);
    }

    /// A request frame's payload as the server reads it: the header with any opcode,
    /// then the body decoded only when the opcode is defined.
    #[test]
    fn request_frames_with_any_opcode_never_panic(
        xid in any::<i32>(),
        opcode in any_raw_opcode(),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut w = BytesMut::new();
        RequestHeader { xid, opcode }.write(&mut w);
        w.extend_from_slice(&body);
        let mut r = Reader::new(w.freeze());
        let header = RequestHeader::read(&mut r).expect("8 bytes of header");
        prop_assert_eq!(header.opcode, opcode);
        prop_assert_eq!(header.op().map(OpCode::code), OpCode::ALL.iter().map(|o| o.code()).find(|c| *c == opcode));
        if let Some(op) = header.op() {
            let _ = Request::decode(op, r.take_rest());
        }
    }

    #[test]
    fn every_request_round_trips_through_its_opcode(request in any_request()) {
        let mut w = bytes::BytesMut::new();
        request.write_body(&mut w);
        let decoded = Request::decode(request.opcode(), w.freeze());
        prop_assert_eq!(decoded, Ok(request));
    }

    #[test]
    fn request_decoding_never_panics(op in any_opcode(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode(op, Bytes::from(bytes));
    }

    #[test]
    fn response_decoding_never_panics(op in any_opcode(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Response::decode(op, Bytes::from(bytes));
    }

    #[test]
    fn session_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let b = Bytes::from(bytes);
        let _ = ConnectRequest::from_bytes(b.clone());
        let _ = ConnectResponse::from_bytes(b.clone());
        let _ = RequestHeader::from_bytes(b.clone());
        let _ = ReplyHeader::from_bytes(b.clone());
        let _ = ErrorResponse::from_bytes(b.clone());
        let _ = WatcherEvent::from_bytes(b.clone());
        let _ = Stat::from_bytes(b.clone());
        let _ = Acl::from_bytes(b.clone());
        let _ = AuthPacket::from_bytes(b.clone());
        let _ = SetWatches2::from_bytes(b.clone());
        let _ = MultiHeader::from_bytes(b.clone());
        let _ = MultiRequest::from_bytes(b.clone());
        let _ = MultiResponse::from_bytes(b);
    }

    /// Decoding mutated valid encodings (closer to real traffic than random bytes).
    #[test]
    fn mutated_multi_requests_never_panic(
        multi in MultiRequest::strategy(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = multi.to_bytes().to_vec();
        if !bytes.is_empty() {
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
        }
        let _ = Request::decode(OpCode::Multi, Bytes::from(bytes));
    }

    #[test]
    fn path_validation_never_panics(path in ".{0,32}") {
        let _ = validate_path(&path);
        let _ = validate_create_path(&path, true);
    }
}
