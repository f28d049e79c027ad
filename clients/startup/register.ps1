# fleetpatch startup script for Windows VMs (Windows PowerShell 5.1 and PowerShell 7).
#
# Installs the AWS SSM agent when it is missing (windows_amd64/AmazonSSMAgentSetup.exe from the
# region's agent download location baked in below, run only when its Authenticode signature is
# Valid and its signer certificate's subject name is the one baked in below, with one of the
# thumbprints baked in below when any is: an unsigned, altered or foreign installer is never
# run). Then reads
# this VM's signed identity from its cloud's metadata service, registers it with the fleetpatch
# API, and registers and starts the agent with the activation the API returns (EC2: the agent
# only has to run).
#
# Served by the fleetpatch API at GET /v1/startup/{provider}?os=windows; the API fills in the
# values below. Environment overrides (local runs only; none is needed in a real cloud):
#   FLEETPATCH_API_URL, FLEETPATCH_METADATA_URL, FLEETPATCH_HOSTNAME, FLEETPATCH_AGENT_URL,
#   FLEETPATCH_MAX_ATTEMPTS, FLEETPATCH_RETRY_BASE, FLEETPATCH_RETRY_CAP (seconds),
#   FLEETPATCH_RETRY_DEADLINE (give up after this many seconds in all; default 3600)
# Every API call (challenge, registration, polling) is retried with backoff through an API
# restart (no connection, 429, 5xx), within the attempts and the total deadline.
# Exit status: 0 enrolled; 1 local failure; 2 the API refused the registration (its reason is
# printed); 3 gave up after retries. Neither the activation code nor the enrollment id (it
# carries a secret) is ever printed.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$Provider = '@@PROVIDER@@'
$ApiUrl = if ($env:FLEETPATCH_API_URL) { $env:FLEETPATCH_API_URL } else { '@@API_URL@@' }
$Audience = '@@AUDIENCE@@'
$AgentUrl = if ($env:FLEETPATCH_AGENT_URL) { $env:FLEETPATCH_AGENT_URL } else { '@@AGENT_URL@@' }
# The installer's trust anchor (settings aws.agent_windows_signer, aws.agent_windows_thumbprints).
$AgentSigner = '@@AGENT_WINDOWS_SIGNER@@'
$AgentThumbprints = @('@@AGENT_WINDOWS_THUMBPRINTS@@'.Split(',') | Where-Object { $_ })
$MaxAttempts = if ($env:FLEETPATCH_MAX_ATTEMPTS) { [int]$env:FLEETPATCH_MAX_ATTEMPTS } else { 40 }
$RetryBase = if ($env:FLEETPATCH_RETRY_BASE) { [double]$env:FLEETPATCH_RETRY_BASE } else { 2.0 }
$RetryCap = if ($env:FLEETPATCH_RETRY_CAP) { [double]$env:FLEETPATCH_RETRY_CAP } else { 300.0 }
$RetryDeadline = if ($env:FLEETPATCH_RETRY_DEADLINE) { [double]$env:FLEETPATCH_RETRY_DEADLINE } else { 3600.0 }
$Started = Get-Date
$AgentService = 'AmazonSSMAgent'
$AgentExe = Join-Path $env:ProgramFiles 'Amazon\SSM\amazon-ssm-agent.exe'

$DefaultMetadataUrl = @{ gcp = 'http://metadata.google.internal'; azure = 'http://169.254.169.254';
                         aws = 'http://169.254.169.254'; vmware = '' }
if (-not $DefaultMetadataUrl.ContainsKey($Provider)) { Write-Error "fleetpatch: unknown provider '$Provider'"; exit 1 }
$MetadataUrl = if ($env:FLEETPATCH_METADATA_URL) { $env:FLEETPATCH_METADATA_URL } else { $DefaultMetadataUrl[$Provider] }
$ApiUrl = $ApiUrl.TrimEnd('/')
$MetadataUrl = $MetadataUrl.TrimEnd('/')

[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

function Write-Log([string]$Message) { [Console]::Error.WriteLine("fleetpatch: $Message") }
function Stop-Script([int]$Code, [string]$Message) { Write-Log $Message; exit $Code }

# One HTTP exchange. Never throws for an HTTP status: returns Status (0 on a network error),
# Body, RetryAfter (seconds or $null) and Location.
function Invoke-Http([string]$Method, [string]$Url, [string]$Body = $null, [hashtable]$Headers = @{}) {
    $params = @{ Uri = $Url; Method = $Method; Headers = $Headers; UseBasicParsing = $true; TimeoutSec = 60 }
    if ($Body) { $params.Body = [Text.Encoding]::UTF8.GetBytes($Body); $params.ContentType = 'application/json' }
    try {
        $r = Invoke-WebRequest @params
        return @{ Status = [int]$r.StatusCode; Body = [string]$r.Content; RetryAfter = $r.Headers['Retry-After']; Location = $r.Headers['Location'] }
    } catch {
        $resp = $null
        if ($_.Exception.PSObject.Properties['Response']) { $resp = $_.Exception.Response }
        if ($null -eq $resp) { return @{ Status = 0; Body = $_.Exception.Message; RetryAfter = $null; Location = $null } }
        $status = [int]$resp.StatusCode
        $text = ''
        if ($_.ErrorDetails -and $_.ErrorDetails.Message) { $text = $_.ErrorDetails.Message }
        elseif ($resp -is [Net.HttpWebResponse]) {
            $reader = New-Object IO.StreamReader($resp.GetResponseStream()); $text = $reader.ReadToEnd(); $reader.Close()
        }
        $retryAfter = $null
        try { $retryAfter = @($resp.Headers.GetValues('Retry-After'))[0] } catch { }
        try { if ($resp.Headers.RetryAfter) { $retryAfter = [string]$resp.Headers.RetryAfter.Delta.TotalSeconds } } catch { }
        return @{ Status = $status; Body = $text; RetryAfter = $retryAfter; Location = $null }
    }
}

function Get-Backoff([int]$Attempt, $RetryAfter) {
    $wait = 0.0
    if ($RetryAfter -and [double]::TryParse([string]$RetryAfter, [ref]$wait)) { } else {
        $wait = $RetryBase * [math]::Pow(2, $Attempt - 1) * (0.5 + (Get-Random -Minimum 0.0 -Maximum 1.0))
    }
    return [math]::Min($wait, $RetryCap)
}

# Sleep before the next attempt, or give up (exit 3) when that would pass the total deadline.
function Wait-Retry([int]$Attempt, $RetryAfter) {
    $wait = Get-Backoff $Attempt $RetryAfter
    $used = ((Get-Date) - $Started).TotalSeconds
    if ($used + $wait -gt $RetryDeadline) { Stop-Script 3 "gave up after $([int]$used)s (FLEETPATCH_RETRY_DEADLINE=$($RetryDeadline)s)" }
    Start-Sleep -Milliseconds ([int](1000 * $wait))
}

function Test-Retryable([int]$Status) { return ($Status -eq 0 -or $Status -eq 429 -or $Status -ge 500) }

function Get-Metadata([string]$Url, [hashtable]$Headers) {
    for ($attempt = 1; $attempt -le 5; $attempt++) {
        $r = Invoke-Http 'GET' $Url $null $Headers
        if ($r.Status -eq 200) { return $r.Body }
        Start-Sleep -Milliseconds ([int](1000 * (Get-Backoff $attempt $null)))
    }
    Stop-Script 1 "metadata service did not answer $($Url.Split('?')[0]) (HTTP $($r.Status))"
}

function Invoke-Refused($Response) {
    $errorType = 'error'; $reason = 'no reason given'
    try { $doc = $Response.Body | ConvertFrom-Json; $errorType = $doc.error; $reason = $doc.reason } catch { }
    Stop-Script 2 "registration refused (HTTP $($Response.Status) $errorType): $reason"
}

function Get-Identity {
    switch ($Provider) {
        'gcp' {
            $aud = [Uri]::EscapeDataString($Audience)
            $token = Get-Metadata "$MetadataUrl/computeMetadata/v1/instance/service-accounts/default/identity?audience=$aud&format=full" @{ 'Metadata-Flavor' = 'Google' }
            return @{ token = $token.Trim() }
        }
        'azure' {
            $challenge = $null
            for ($attempt = 1; $attempt -le $MaxAttempts; $attempt++) {
                $challenge = Invoke-Http 'GET' "$ApiUrl/v1/challenge"
                if ($challenge.Status -eq 200) { break }
                if (-not (Test-Retryable $challenge.Status)) { Invoke-Refused $challenge }
                Write-Log "challenge: API answered $($challenge.Status); retry $attempt of $MaxAttempts"
                if ($attempt -ge $MaxAttempts) { Stop-Script 3 "no challenge from the API after $MaxAttempts attempts" }
                Wait-Retry $attempt $challenge.RetryAfter
            }
            $nonce = ($challenge.Body | ConvertFrom-Json).nonce
            if ($nonce -notmatch '^[A-Za-z0-9]{1,32}$') { Stop-Script 1 'the API gave no usable challenge nonce' }
            $attested = Get-Metadata "$MetadataUrl/metadata/attested/document?api-version=2020-09-01&nonce=$nonce" @{ Metadata = 'true' }
            $resourceId = Get-Metadata "$MetadataUrl/metadata/instance/compute/resourceId?api-version=2021-02-01&format=text" @{ Metadata = 'true' }
            return @{ attested = ($attested | ConvertFrom-Json); nonce = $nonce; resource_id = $resourceId.Trim() }
        }
        'aws' {
            for ($attempt = 1; $attempt -le 5; $attempt++) {
                $t = Invoke-Http 'PUT' "$MetadataUrl/latest/api/token" $null @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '300' }
                if ($t.Status -eq 200) { break }
                if (-not (Test-Retryable $t.Status) -or $attempt -ge 5) { Stop-Script 1 "IMDSv2 token request failed (HTTP $($t.Status))" }
                Start-Sleep -Milliseconds ([int](1000 * (Get-Backoff $attempt $null)))
            }
            $rsa2048 = Get-Metadata "$MetadataUrl/latest/dynamic/instance-identity/rsa2048" @{ 'X-aws-ec2-metadata-token' = $t.Body }
            return @{ rsa2048 = $rsa2048 }
        }
        'vmware' {
            $rpctool = Join-Path $env:ProgramFiles 'VMware\VMware Tools\rpctool.exe'
            $token = & $rpctool 'info-get guestinfo.fleetpatch.token' 2>$null
            if ($LASTEXITCODE -ne 0 -or -not $token) {
                Stop-Script 1 'this VM holds no fleetpatch token (guestinfo.fleetpatch.token); ask your operator to issue tokens'
            }
            $bios = (Get-CimInstance -ClassName Win32_ComputerSystemProduct).UUID
            return @{ token = ([string]$token).Trim(); bios_uuid = ([string]$bios).Trim().ToLowerInvariant() }
        }
    }
}

function Get-RegistrationBody {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    $hostName = if ($env:FLEETPATCH_HOSTNAME) { $env:FLEETPATCH_HOSTNAME } else { $env:COMPUTERNAME }
    $body = [ordered]@{
        provider = $Provider
        identity = (Get-Identity)
        hostname = $hostName
        platform = [ordered]@{ os = 'windows'; version = [string]$os.Version }
    }
    return ($body | ConvertTo-Json -Depth 10 -Compress)
}

# The SSM agent, when missing: the installer for this architecture, run only when Windows finds
# its Authenticode signature Valid (chain to a trusted root, file unaltered) and the signer is the
# configured one (subject common name, and thumbprint when configured).
function Test-AgentSignature([string]$File, [string]$Path) {
    $signature = Get-AuthenticodeSignature -FilePath $File
    if ($signature.Status -ne 'Valid') {
        Stop-Script 1 "refusing to install the SSM agent: $Path's Authenticode signature is $($signature.Status) ($($signature.StatusMessage))"
    }
    $certificate = $signature.SignerCertificate
    $name = $certificate.GetNameInfo([Security.Cryptography.X509Certificates.X509NameType]::SimpleName, $false)
    if ($name -ne $AgentSigner) {
        Stop-Script 1 "refusing to install the SSM agent: $Path is signed by '$name', not '$AgentSigner'"
    }
    if ($AgentThumbprints.Count -gt 0 -and $AgentThumbprints -notcontains $certificate.Thumbprint.ToUpperInvariant()) {
        Stop-Script 1 "refusing to install the SSM agent: $Path's signer certificate $($certificate.Thumbprint) is not a configured thumbprint"
    }
    return $certificate.Thumbprint
}

function Install-Agent {
    if ((Test-Path $AgentExe) -and (Get-Service -Name $AgentService -ErrorAction SilentlyContinue)) { return }
    if (-not [Environment]::Is64BitOperatingSystem) { Stop-Script 1 'the SSM agent is not installed and has no 32-bit package' }
    $path = 'windows_amd64/AmazonSSMAgentSetup.exe'
    $work = Join-Path ([IO.Path]::GetTempPath()) ("fleetpatch-" + [guid]::NewGuid().ToString('N'))
    New-Item -ItemType Directory -Path $work | Out-Null
    $file = Join-Path $work 'AmazonSSMAgentSetup.exe'
    Write-Log "the SSM agent is not installed: downloading $AgentUrl/$path"
    try {
        Invoke-WebRequest -Uri "$AgentUrl/$path" -OutFile $file -UseBasicParsing -TimeoutSec 600
    } catch { Stop-Script 1 "could not download the SSM agent package: $($_.Exception.Message)" }
    $thumbprint = Test-AgentSignature $file $path
    $setup = Start-Process -FilePath $file -ArgumentList @('/q', '/log', (Join-Path $work 'install.log')) -Wait -PassThru
    if ($setup.ExitCode -ne 0) { Stop-Script 1 "installing the SSM agent failed (exit $($setup.ExitCode))" }
    if (-not (Test-Path $AgentExe)) { Stop-Script 1 "the SSM agent installer left no $AgentExe" }
    Write-Log "SSM agent installed from $path (Authenticode signature by '$AgentSigner', certificate $thumbprint, verified)"
}

function Start-Agent {
    Set-Service -Name $AgentService -StartupType Automatic
    Restart-Service -Name $AgentService
}

function Complete-Enrollment([string]$Answer) {
    $doc = $Answer | ConvertFrom-Json
    Write-Log "enrolled: systems account $($doc.systems_account), patch group $($doc.patch_group)"
    if ($null -eq $doc.activation) {
        Write-Log 'no activation needed (EC2): making sure the SSM agent runs'
        Start-Agent
        return
    }
    $a = $doc.activation
    if (-not ($a.id -and $a.code -and $a.region)) { Stop-Script 1 "the API's activation is incomplete" }
    Stop-Service -Name $AgentService -ErrorAction SilentlyContinue
    $output = & $AgentExe -register -code $a.code -id $a.id -region $a.region -y 2>&1 | Out-String
    if ($LASTEXITCODE -ne 0) {
        Write-Log ($output.Replace([string]$a.code, '<redacted>'))
        Write-Log "amazon-ssm-agent -register failed for activation $($a.id)"
        $script:RegisterFailed = $true
        return
    }
    Write-Log "SSM agent registered with activation $($a.id) in $($a.region)"
    Start-Agent
    Write-Log 'SSM agent started'
}

function Wait-Enrollment([string]$Location) {
    if ($Location -like '/*') { $Location = "$ApiUrl$Location" }
    elseif ($Location -notmatch '^https?://') { Stop-Script 1 'the API answered 202 without a usable Location' }
    for ($attempt = 1; $attempt -le $MaxAttempts; $attempt++) {
        Wait-Retry $attempt $null
        $r = Invoke-Http 'GET' $Location
        if ($r.Status -eq 200 -or $r.Status -eq 201) { Complete-Enrollment $r.Body; return }
        if ($r.Status -eq 202) { Write-Log 'enrollment in progress; waiting'; continue }
        if (-not (Test-Retryable $r.Status)) { Invoke-Refused $r }
        Write-Log "API answered $($r.Status); retrying"
    }
    Stop-Script 3 "the enrollment did not finish after $MaxAttempts polls"
}

# An activation the agent cannot register with (used, expired or deleted) is answered by
# registering again: the running enrollment then issues a fresh one (bounded here and there).
$MaxFreshActivations = if ($env:FLEETPATCH_MAX_FRESH_ACTIVATIONS) { [int]$env:FLEETPATCH_MAX_FRESH_ACTIVATIONS } else { 2 }
$FreshActivations = 0
$script:RegisterFailed = $false

function Request-FreshActivation {
    $script:FreshActivations++
    if ($script:FreshActivations -gt $MaxFreshActivations) {
        Stop-Script 1 "amazon-ssm-agent -register failed with $($script:FreshActivations) activations; giving up"
    }
    Write-Log "registering again for a fresh activation ($($script:FreshActivations) of $MaxFreshActivations)"
    $script:RegisterFailed = $false
}

Install-Agent
Write-Log "registering this Windows VM ($Provider) with $ApiUrl"
for ($attempt = 1; $attempt -le $MaxAttempts; $attempt++) {
    $r = Invoke-Http 'POST' "$ApiUrl/v1/registrations" (Get-RegistrationBody)
    $answered = $false
    if ($r.Status -eq 200 -or $r.Status -eq 201) { Complete-Enrollment $r.Body; $answered = $true }
    elseif ($r.Status -eq 202) { Wait-Enrollment ([string]$r.Location); $answered = $true }
    if ($answered) {
        if (-not $script:RegisterFailed) { exit 0 }
        Request-FreshActivation
        continue
    }
    $running = $false
    if ($r.Status -eq 409) { try { $running = (($r.Body | ConvertFrom-Json).error -eq 'EnrollmentRunning') } catch { } }
    # An earlier attempt (whose answer was lost) may still be enrolling this VM: wait and retry.
    if (-not $running -and -not (Test-Retryable $r.Status)) { Invoke-Refused $r }
    Write-Log "API answered $($r.Status); retry $attempt of $MaxAttempts"
    if ($attempt -lt $MaxAttempts) { Wait-Retry $attempt $r.RetryAfter }
}
Stop-Script 3 "gave up after $MaxAttempts attempts"
