package account

import (
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPasswordHashDefaultCost(t *testing.T) {
	start := time.Now()
	h, err := hashPassword(rand.Reader, DefaultPasswordParams, "correct horse battery")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("argon2id at the default cost: %v", took)
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Errorf("hash %q is not a PHC argon2id string with the default parameters", h)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		if ok, err := verifyPassword(h, pw); err != nil || ok != want {
			t.Errorf("verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	h2, _ := hashPassword(rand.Reader, DefaultPasswordParams, "correct horse battery")
	if h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestVerifyRefusesBadHashes(t *testing.T) {
	good, err := hashPassword(rand.Reader, PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":       "",
		"bcrypt":      "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"argon2i":     strings.Replace(good, "argon2id", "argon2i", 1),
		"version":     strings.Replace(good, "v=19", "v=16", 1),
		"huge-memory": strings.Join([]string{"", parts[1], parts[2], "m=4194304,t=1,p=1", parts[4], parts[5]}, "$"),
		"zero-time":   strings.Join([]string{"", parts[1], parts[2], "m=64,t=0,p=1", parts[4], parts[5]}, "$"),
		"bad-salt":    strings.Join([]string{"", parts[1], parts[2], parts[3], "!!", parts[5]}, "$"),
		"short-key":   strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
	} {
		if ok, err := verifyPassword(h, "pw"); ok || err == nil {
			t.Errorf("%s: verify = %v, %v; want an error", name, ok, err)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	pw, err := GeneratePassword(rand.Reader)
	if err != nil || len(pw) != GeneratedPasswordLen || checkPassword(pw) != nil {
		t.Fatalf("GeneratePassword = %q, %v", pw, err)
	}
	for _, c := range pw {
		if !strings.ContainsRune(passwordAlphabet, c) {
			t.Errorf("%q has %q, outside the alphabet", pw, c)
		}
	}
}
