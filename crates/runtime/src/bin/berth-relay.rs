fn main() {
    berth_runtime::relay::main()
}
