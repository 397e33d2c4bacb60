//! Null (-1) against empty, record by record, as documented in `jute` ("Null and
//! empty"): null stays distinct (or is refused) where Apache ZooKeeper 3.8 tells the two
//! apart, and reads as empty where it treats them alike.

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::*;

const NULL: i32 = -1;

fn bytes(f: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut w = BytesMut::new();
    f(&mut w);
    w.freeze()
}

fn put_str(w: &mut BytesMut, s: &str) {
    w.put_i32(s.len() as i32);
    w.put_slice(s.as_bytes());
}

#[test]
fn znode_data_keeps_null_apart_from_empty() {
    let encode = |len: i32| {
        bytes(|w| {
            w.put_i32(len);
            Stat::default().write(w);
        })
    };
    let null = GetDataResponse::from_bytes(encode(NULL)).unwrap();
    let empty = GetDataResponse::from_bytes(encode(0)).unwrap();
    assert_eq!(null.data, None);
    assert_eq!(empty.data, Some(Bytes::new()));
    assert_eq!(null.to_bytes(), encode(NULL));
    assert_eq!(empty.to_bytes(), encode(0));
}

#[test]
fn a_null_acl_list_reads_as_empty_which_zookeeper_refuses_alike() {
    // ZooKeeper's fixupACL answers InvalidACL to a null and to an empty list, so both
    // reaching the server as an empty list keeps the outcome.
    let encode = |acl_count: i32| {
        bytes(|w| {
            put_str(w, "/n");
            w.put_i32(NULL); // data
            w.put_i32(acl_count);
            w.put_i32(0); // flags
        })
    };
    let null = CreateRequest::from_bytes(encode(NULL)).unwrap();
    let empty = CreateRequest::from_bytes(encode(0)).unwrap();
    assert_eq!(null, empty);
    assert!(null.acl.is_empty());
    // Re-encoding is canonical: the empty form.
    assert_eq!(null.to_bytes(), encode(0));

    let set_acl = bytes(|w| {
        put_str(w, "/n");
        w.put_i32(NULL);
        w.put_i32(-1); // version
    });
    assert!(SetAclRequest::from_bytes(set_acl).unwrap().acl.is_empty());
}

#[test]
fn a_null_children_list_reads_as_empty() {
    // ZooKeeper's server never writes null here (it lists a collection).
    let null = bytes(|w| w.put_i32(NULL));
    assert_eq!(
        GetChildrenResponse::from_bytes(null.clone()).unwrap(),
        GetChildrenResponse { children: vec![] }
    );
    assert_eq!(
        Response::decode(OpCode::GetChildren, null),
        Ok(Response::GetChildren(GetChildrenResponse {
            children: vec![]
        }))
    );
    let null2 = bytes(|w| {
        w.put_i32(NULL);
        Stat::default().write(w);
    });
    assert!(GetChildren2Response::from_bytes(null2)
        .unwrap()
        .children
        .is_empty());
}

#[test]
fn a_null_connect_password_reads_as_empty_as_zookeeper_treats_it() {
    // createSession replaces a null password by an empty one; checkPasswd fails both.
    let encode = |passwd_len: i32| {
        bytes(|w| {
            w.put_i32(0);
            w.put_i64(0);
            w.put_i32(30000);
            w.put_i64(0);
            w.put_i32(passwd_len);
            w.put_u8(0); // readOnly
        })
    };
    let null = ConnectRequest::from_bytes(encode(NULL)).unwrap();
    let empty = ConnectRequest::from_bytes(encode(0)).unwrap();
    assert_eq!(null, empty);
    assert_eq!(null.passwd, Bytes::new());
    assert_eq!(null.to_bytes(), encode(0));
}

#[test]
fn a_null_auth_buffer_is_refused_but_empty_credentials_are_read() {
    // ZooKeeper: null digest credentials throw (AUTHFAILED, connection closed); empty
    // ones are a digest of "".
    let encode = |len: i32| {
        bytes(|w| {
            w.put_i32(0);
            put_str(w, "digest");
            w.put_i32(len);
        })
    };
    assert_eq!(
        AuthPacket::from_bytes(encode(NULL)),
        Err(DecodeError::UnexpectedNull { what: "buffer" })
    );
    assert!(Request::decode(OpCode::Auth, encode(NULL)).is_err());
    assert_eq!(
        AuthPacket::from_bytes(encode(0)).unwrap().auth,
        Bytes::new()
    );
}

#[test]
fn a_null_watch_list_is_refused_but_an_empty_one_is_read() {
    // ZooKeeper: DataTree.setWatches iterates each list, so null is a MarshallingError.
    let set_watches = |lists: [i32; 3]| {
        bytes(|w| {
            w.put_i64(5);
            for count in lists {
                w.put_i32(count);
            }
        })
    };
    for at in 0..3 {
        let mut lists = [0; 3];
        lists[at] = NULL;
        assert_eq!(
            Request::decode(OpCode::SetWatches, set_watches(lists)),
            Err(DecodeError::UnexpectedNull { what: "vector" }),
            "list {at}"
        );
    }
    assert_eq!(
        Request::decode(OpCode::SetWatches, set_watches([0; 3])),
        Ok(Request::SetWatches(SetWatches {
            relative_zxid: 5,
            ..SetWatches::default()
        }))
    );

    let set_watches2 = |lists: [i32; 5]| {
        bytes(|w| {
            w.put_i64(5);
            for count in lists {
                w.put_i32(count);
            }
        })
    };
    for at in 0..5 {
        let mut lists = [0; 5];
        lists[at] = NULL;
        assert_eq!(
            SetWatches2::from_bytes(set_watches2(lists)),
            Err(DecodeError::UnexpectedNull { what: "vector" }),
            "list {at}"
        );
    }
    assert!(SetWatches2::from_bytes(set_watches2([0; 5])).is_ok());
}
