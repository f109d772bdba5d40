// verify-dsse is an independent verifier for Eventloom's signed CloudEvents, written from docs/signing.md
// with the Go standard library only. It shares no code with the TypeScript implementation: it recomputes
// key ids (RFC 7638), the verification material and the DSSE PAE from the raw Kafka record fields.
//
// Usage: go run verify-dsse.go <vectors.json>
//
// The file holds an array of vectors:
//
//	[{"name": "...", "publicKeys": [<Ed25519 JWK>...],
//	  "record": {"key": <base64|null>, "value": <base64|null>,
//	             "headers": [{"key": "ce_id", "value": <base64>}, ...]}}]
//
// It prints "ACCEPT <name> keyid=<id>" or "REJECT <name>: <reason>" per vector, and exits 1 if any vector
// was rejected (2 on unusable input).
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const payloadType = "application/vnd.eventloom.cloudevent-material.v1"

// The core attributes in material order (docs/signing.md).
var coreAttributes = []string{"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}

// Extensions that may never appear in signedextattrs.
var unsignable = map[string]bool{"dssematerial": true, "signedextattrs": true, "traceparent": true, "tracestate": true}

type vector struct {
	Name       string `json:"name"`
	PublicKeys []jwk  `json:"publicKeys"`
	Record     record `json:"record"`
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

type record struct {
	Key     *string  `json:"key"`
	Value   *string  `json:"value"`
	Headers []header `json:"headers"`
}

type header struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// event is what the material covers: attribute values (absent = not in the map) and the data bytes.
type event struct {
	attributes map[string]string
	data       []byte
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run verify-dsse.go <vectors.json>")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var vectors []vector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		fmt.Fprintln(os.Stderr, "vectors:", err)
		os.Exit(2)
	}
	rejected := false
	for _, v := range vectors {
		keyID, err := verify(v)
		if err != nil {
			rejected = true
			fmt.Printf("REJECT %s: %v\n", v.Name, err)
		} else {
			fmt.Printf("ACCEPT %s keyid=%s\n", v.Name, keyID)
		}
	}
	if rejected {
		os.Exit(1)
	}
}

func verify(v vector) (string, error) {
	keys := map[string]ed25519.PublicKey{}
	for _, k := range v.PublicKeys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			return "", fmt.Errorf("public key is %s/%s, not OKP/Ed25519", k.Kty, k.Crv)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return "", fmt.Errorf("public key x is not 32 base64url bytes")
		}
		keys[thumbprint(k)] = ed25519.PublicKey(x)
	}

	ev, err := decodeRecord(v.Record)
	if err != nil {
		return "", err
	}
	material, ok := ev.attributes["dssematerial"]
	if !ok || material == "" {
		return "", errors.New("no dssematerial")
	}
	envJSON, err := base64.StdEncoding.DecodeString(material)
	if err != nil {
		return "", fmt.Errorf("dssematerial is not base64: %v", err)
	}
	var env envelope
	if err := json.Unmarshal(envJSON, &env); err != nil {
		return "", fmt.Errorf("dssematerial is not a DSSE envelope: %v", err)
	}
	if env.PayloadType != payloadType {
		return "", fmt.Errorf("payloadType %q is not %q", env.PayloadType, payloadType)
	}
	payload, err := decodeBase64(env.Payload)
	if err != nil || len(payload) != sha256.Size {
		return "", errors.New("payload is not a base64 SHA-256 digest")
	}

	var names []string
	if list := ev.attributes["signedextattrs"]; list != "" {
		names = strings.Split(list, ",")
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] || unsignable[name] || isCore(name) || !validName(name) {
			return "", fmt.Errorf("signedextattrs lists %q, which cannot be signed", name)
		}
		seen[name] = true
	}

	digest := materialDigest(ev, names)
	if !bytes.Equal(digest[:], payload) {
		return "", errors.New("event does not match the signed material (tampered data or attribute)")
	}
	message := pae(payloadType, payload)
	for _, s := range env.Signatures {
		key, known := keys[s.KeyID]
		if !known {
			continue
		}
		sig, err := decodeBase64(s.Sig)
		if err == nil && ed25519.Verify(key, message, sig) {
			return s.KeyID, nil
		}
	}
	return "", errors.New("no signature by a known key verifies")
}

// thumbprint is the RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order.
func thumbprint(k jwk) string {
	canonical := fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q}`, k.Crv, k.Kty, k.X)
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// materialDigest frames every covered field (docs/signing.md, "Verification material") and hashes once.
func materialDigest(ev event, names []string) [32]byte {
	var b bytes.Buffer
	field := func(value string, present bool) {
		if !present {
			b.WriteByte(0)
			return
		}
		b.WriteByte(1)
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(value))))
		b.WriteString(value)
	}
	for _, name := range coreAttributes {
		value, present := ev.attributes[name]
		field(value, present)
	}
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(names))))
	for _, name := range names {
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(name))))
		b.WriteString(name)
		value, present := ev.attributes[name]
		field(value, present)
	}
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(ev.data))))
	b.Write(ev.data)
	return sha256.Sum256(b.Bytes())
}

// pae is DSSE's pre-authentication encoding.
func pae(typ string, body []byte) []byte {
	return append([]byte(fmt.Sprintf("DSSEv1 %d %s %d ", len(typ), typ, len(body))), body...)
}

func decodeRecord(r record) (event, error) {
	headers := map[string][]byte{}
	for _, h := range r.Headers {
		if _, dup := headers[h.Key]; dup {
			return event{}, fmt.Errorf("header %q repeats", h.Key)
		}
		value, err := base64.StdEncoding.DecodeString(h.Value)
		if err != nil {
			return event{}, fmt.Errorf("header %q is not base64 in the vector", h.Key)
		}
		headers[h.Key] = value
	}
	var value []byte
	if r.Value != nil {
		var err error
		if value, err = base64.StdEncoding.DecodeString(*r.Value); err != nil {
			return event{}, errors.New("value is not base64 in the vector")
		}
	}
	contentType, hasContentType := headers["content-type"]
	mediaType := strings.ToLower(strings.TrimSpace(strings.SplitN(string(contentType), ";", 2)[0]))
	if mediaType == "application/cloudevents+json" {
		return decodeStructured(value)
	}
	ev := event{attributes: map[string]string{}, data: value}
	for name, v := range headers {
		if strings.HasPrefix(name, "ce_") {
			ev.attributes[strings.TrimPrefix(name, "ce_")] = string(v)
		}
	}
	if hasContentType {
		ev.attributes["datacontenttype"] = string(contentType)
	}
	return ev, nil
}

// decodeStructured reads the JSON event format; json.RawMessage keeps the data member's exact bytes.
func decodeStructured(value []byte) (event, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(value, &members); err != nil {
		return event{}, fmt.Errorf("structured value is not a JSON object: %v", err)
	}
	ev := event{attributes: map[string]string{}}
	for name, raw := range members {
		if name == "data" || name == "data_base64" || string(raw) == "null" {
			continue
		}
		var s string
		var b bool
		switch {
		case json.Unmarshal(raw, &s) == nil:
			ev.attributes[name] = s
		case json.Unmarshal(raw, &b) == nil:
			ev.attributes[name] = strconv.FormatBool(b)
		default:
			n, err := strconv.ParseInt(string(raw), 10, 32)
			if err != nil {
				return event{}, fmt.Errorf("attribute %q is not a string, boolean or integer", name)
			}
			ev.attributes[name] = strconv.FormatInt(n, 10)
		}
	}
	if raw, ok := members["data_base64"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return event{}, errors.New("data_base64 is not a string")
		}
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return event{}, errors.New("data_base64 is not base64")
		}
		ev.data = data
	} else if raw, ok := members["data"]; ok && string(raw) != "null" {
		contentType, typed := ev.attributes["datacontenttype"]
		var text string
		if typed && !isJSONMediaType(contentType) && json.Unmarshal(raw, &text) == nil {
			ev.data = []byte(text)
		} else {
			ev.data = raw
		}
	}
	return ev, nil
}

func isJSONMediaType(contentType string) bool {
	mediaType := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	return mediaType == "application/json" || mediaType == "text/json" || strings.HasSuffix(mediaType, "+json")
}

// DSSE allows standard or URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.NewReplacer("-", "+", "_", "/").Replace(s), "=")
	return base64.RawStdEncoding.DecodeString(s)
}

func isCore(name string) bool {
	for _, core := range coreAttributes {
		if name == core {
			return true
		}
	}
	return false
}

func validName(name string) bool {
	if len(name) == 0 || len(name) > 20 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
