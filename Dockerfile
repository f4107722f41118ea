# syntax=docker/dockerfile:1
# Multi-stage build: templ generate, a static binary, and a minimal non-root runtime.

FROM golang:1.26 AS build
ENV GOTOOLCHAIN=go1.26.10 CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The generated views are committed, but regenerate so the image never ships stale ones.
RUN go tool templ generate -path views
RUN go build -trimpath -ldflags='-s -w' -o /out/beadbff ./cmd/beadbff \
 && go build -trimpath -ldflags='-s -w' -o /out/beadsandbox ./cmd/beadsandbox

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/beadbff /out/beadsandbox /usr/local/bin/
USER nonroot:nonroot
# In a container the server must listen on every interface; set BFF_PUBLIC_URL to the URL browsers use.
ENV BFF_ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/beadbff"]
