// Package storetest is the contract suite for [device.Store] and the other
// store contracts. Each backend
// (SQLite, PostgreSQL) runs it from its own tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) device.Store { return openEmpty(t) })
//	}
//
// The suite checks every method and every guarantee the contract documents:
// NotFound and Conflict kinds with messages naming the device, UTC times at
// microsecond precision with zero times round-tripping as zero, the filters,
// sorting and paging of ListDevices, all-or-nothing imports that keep
// CreatedAt and the LSC, the transitions of StartAttempt, FinishAttempt and
// FailStaleAttempts, issuances that outlive their device, and concurrent use.
//
// [RunAccounts] is the contract suite for [account.Store]: accounts unique
// ignoring case, the last admin kept, login reservations that count even
// when concurrent, sessions with their account's current role and their
// pruning, tokens by hash, and one audit event per change.
//
// [RunKeys] is the contract suite for [keys.Store]: keys created only into
// an empty store and all or nothing (one of racing creators wins),
// re-sealed all together and only from the KEK they are under, audited in
// the same transaction; and [keys.Service] over it: what is sealed opens
// under the same KEK only, and after a rotation only under the new one.
package storetest
