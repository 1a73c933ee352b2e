//! SHA-256 by the runtime (`crypto.subtle.digest`), outside wasm: native code instead of ≈ 57
//! wasm instructions a byte. Used for the KV fast-path key of a whole body.

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// SHA-256 of `prefix ‖ body`; `None` if the runtime has no `crypto.subtle` or the digest fails.
pub async fn sha256(prefix: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let subtle = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .and_then(|c| Reflect::get(&c, &JsValue::from_str("subtle")))
        .ok()?;
    let digest: Function = Reflect::get(&subtle, &JsValue::from_str("digest"))
        .ok()?
        .dyn_into()
        .ok()?;
    let data = Uint8Array::new_with_length((prefix.len() + body.len()) as u32);
    data.subarray(0, prefix.len() as u32).copy_from(prefix);
    data.subarray(prefix.len() as u32, data.length())
        .copy_from(body);
    let promise: Promise = digest
        .call2(&subtle, &JsValue::from_str("SHA-256"), &data)
        .ok()?
        .dyn_into()
        .ok()?;
    let buf = JsFuture::from(promise).await.ok()?;
    Some(Uint8Array::new(&buf).to_vec())
}
