//! `storage.transactionSync(callback)` for SQLite-backed Durable Objects: every statement in the
//! callback commits together, or none does when it fails.

use js_sys::{Function, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Error, Result, Storage};

/// Runs `f` inside `transactionSync`; an `Err` from `f` rolls every write of `f` back.
pub fn transaction_sync<'a, T: 'a>(
    storage: &Storage,
    f: impl FnOnce() -> Result<T> + 'a,
) -> Result<T> {
    let mut slot: Option<Result<T>> = None;
    let slot_ptr: *mut Option<Result<T>> = &mut slot;
    let body: Box<dyn FnOnce() -> bool + 'a> = Box::new(move || {
        let r = f();
        let ok = r.is_ok();
        // SAFETY: `slot` outlives this call: the callback runs synchronously inside
        // `transactionSync`, which returns before `slot` is read or dropped.
        unsafe { *slot_ptr = Some(r) };
        ok
    });
    // SAFETY: the boxed closure is only called synchronously by `transactionSync` below and the
    // `Closure` holding it is dropped before this function returns, so nothing it borrows is
    // used after `'a` ends.
    let body: Box<dyn FnOnce() -> bool + 'static> = unsafe { std::mem::transmute(body) };
    let cb = Closure::once(move || -> std::result::Result<JsValue, JsValue> {
        if body() {
            Ok(JsValue::UNDEFINED)
        } else {
            Err(JsValue::from_str("transaction rolled back"))
        }
    });
    let raw = storage.as_raw();
    let func: Function = Reflect::get(raw, &JsValue::from_str("transactionSync"))?
        .dyn_into()
        .map_err(|_| Error::RustError("storage.transactionSync is not available".into()))?;
    let called = func.call1(raw, cb.as_ref());
    drop(cb);
    match (slot, called) {
        (Some(Ok(v)), Ok(_)) => Ok(v),
        (Some(Err(e)), _) => Err(e),
        (_, Err(e)) => Err(Error::from(e)),
        (None, Ok(_)) => Err(Error::RustError("transaction callback did not run".into())),
    }
}
