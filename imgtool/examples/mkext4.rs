//! Formats a file as ext4 with imgtool's formatter: `mkext4 FILE SIZE_BYTES`.
use imgtool::ext4;
use std::os::unix::fs::FileExt;

struct F(std::fs::File);
impl ext4::WriteAt for F {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all_at(data, offset)
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let size: u64 = args[2].parse()?;
    let file = std::fs::File::create(&args[1])?;
    file.set_len(size)?;
    let opts = ext4::Options {
        uuid: [7; 16],
        hash_seed: [9; 16],
        label: "data".into(),
        time: 1_700_000_000,
    };
    let geo = ext4::format(&mut F(file), size, &opts)?;
    println!("{geo:?}");
    Ok(())
}
