//! The image-transmit program. Everything it does is in the library (lib.rs).

fn main() -> std::process::ExitCode {
    image_transmit::main()
}
