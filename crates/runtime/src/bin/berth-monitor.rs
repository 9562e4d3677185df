fn main() {
    berth_runtime::monitor::main()
}
