module github.com/zrep/zrep

go 1.24
