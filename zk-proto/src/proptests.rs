//! Property tests: every record round-trips, and no input makes a decoder panic.

use bytes::Bytes;
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

/// Every opcode a decoder can be asked about, plus values the protocol does not define.
fn any_opcode() -> impl Strategy<Value = OpCode> {
    proptest::sample::select(OpCode::ALL.to_vec())
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
        let _ = ReplyHeader::from_bytes(b.clone());
        let _ = WatcherEvent::from_bytes(b.clone());
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
