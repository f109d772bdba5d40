module eventloom.io/interop

go 1.26
