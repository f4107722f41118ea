package session

import (
	"context"
	"testing"
	"time"

	"beadbff/session/redistest"
)

// Benchmarks of the session path every request takes. The Redis ones run on a loopback redis-server, so
// they measure this package plus one round trip, not a network. Each reports stored-B/session: the
// sealed blob's size, with tokens the size of real Keycloak JWTs.

type benchStore struct {
	name string
	open func(b *testing.B) Store
}

func benchStores() []benchStore {
	return []benchStore{
		{name: "memory", open: func(b *testing.B) Store {
			st, err := NewMemory(Options{Keyring: mustKeyring(b, keyA)})
			if err != nil {
				b.Fatal(err)
			}
			return st
		}},
		{name: "redis", open: func(b *testing.B) Store {
			url, prefix := redistest.Start(b), redistest.Prefix(b)
			raw := rawRedisClient(b, url)
			b.Cleanup(func() { deleteKeys(b, raw, prefix) })
			st, err := NewRedis(context.Background(), url, Options{Keyring: mustKeyring(b, keyA), Prefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st
		}},
	}
}

func benchSession(b *testing.B, st Store) *Session {
	b.Helper()
	id, err := st.NewID()
	if err != nil {
		b.Fatal(err)
	}
	s := sessionFixture(time.Now())
	s.ID = id
	return s
}

// storedSize is the length of the blob Save writes for s.
func storedSize(b *testing.B, st Store, s *Session) int {
	b.Helper()
	impl := st.(*store)
	blob, err := impl.be.get(context.Background(), impl.sessionKey(s.ID))
	if err != nil {
		b.Fatal(err)
	}
	return len(blob)
}

func BenchmarkSave(b *testing.B) {
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			st := bs.open(b)
			s := benchSession(b, st)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := st.Save(ctx, s, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(storedSize(b, st, s)), "stored-B/session")
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			st := bs.open(b)
			s := benchSession(b, st)
			ctx := context.Background()
			if err := st.Save(ctx, s, time.Hour); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Load(ctx, s.ID); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(storedSize(b, st, s)), "stored-B/session")
		})
	}
}
