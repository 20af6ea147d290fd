# The companin binary in a small image. In docker-compose.yml it talks to the
# PostgreSQL, EventStoreDB and NATS containers; it never needs the embedded
# PostgreSQL (set DATABASE_URL).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/companin ./cmd/companin

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/companin /usr/local/bin/companin
ENV COMPANIN_ADDR=:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/companin"]
CMD ["serve"]
