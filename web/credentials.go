package web

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"

	"golang.org/x/crypto/bcrypt"
)

// HashPassword returns the bcrypt hash of a password for
// http.basic_auth_users (cost 0: bcrypt's default, 10).
func HashPassword(password string, cost int) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// TokenHash returns the "sha256:HEX" form of a bearer token for
// http.bearer_tokens.
func TokenHash(token string) string {
	return "sha256:" + hex.EncodeToString(digest(token))
}

// NewToken returns a random bearer token of 256 bits and its TokenHash.
func NewToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, TokenHash(token), nil
}
